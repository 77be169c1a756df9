"""API tokens, signed routing addresses at the inbound domain, secret encryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from core.settings import get_settings

TOKEN_PREFIX = "rm_"


def new_api_token() -> tuple[str, str]:
    """(token shown once, sha256 hash to store)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@lru_cache(maxsize=32)
def _derived_key(secret: bytes, purpose: bytes) -> bytes:
    return hmac.digest(secret, purpose, "sha256")


def _key(purpose: bytes) -> bytes:
    return _derived_key(get_settings().secret, purpose)


# --- signed addresses --------------------------------------------------------------
# Local part: <kind>-<32 hex uuid>-<16 hex hmac>. Lower-case only, since some mail
# systems lower-case local parts; 52 characters, under the 64 that RFC 5321 allows.
ADDRESS_KINDS = {"r": "reply", "b": "bounce", "i": "organizer"}
_LOCAL_RE = re.compile(r"^([rbi])-([0-9a-f]{32})-([0-9a-f]{16})$")


def _sign(kind: str, object_id: uuid.UUID) -> str:
    return _signature(_key(b"address"), kind, object_id)


@lru_cache(maxsize=256)
def _signature(key: bytes, kind: str, object_id: uuid.UUID) -> str:
    # One-shot HMAC, kept for a moment: a worker signs a mail's bounce address when its
    # lane announces the mail and again when it builds it (and the reply address once).
    return hmac.digest(key, f"{kind}:{object_id.hex}".encode(), "sha256").hex()[:16]


def signed_address(kind: str, object_id: uuid.UUID, domain: str | None = None) -> str:
    """kind: "r" reply-to of a message, "b" bounce (envelope sender), "i" interview organizer."""
    if kind not in ADDRESS_KINDS:
        raise ValueError(kind)
    domain = domain or get_settings().inbound_domain
    return f"{kind}-{object_id.hex}-{_sign(kind, object_id)}@{domain}"


def parse_signed_address(address: str, domain: str | None = None) -> tuple[str, uuid.UUID] | None:
    """(kind, id) when the address is ours and the signature holds, else None."""
    domain = (domain or get_settings().inbound_domain).lower()
    local, sep, dom = address.strip().strip("<>").rpartition("@")
    if not sep or dom.lower() != domain:
        return None
    m = _LOCAL_RE.match(local.lower())
    if not m:
        return None
    kind, hexid, sig = m.groups()
    oid = uuid.UUID(hexid)
    if not hmac.compare_digest(sig, _sign(kind, oid)):
        return None
    return kind, oid


# --- secrets at rest -------------------------------------------------------------------
def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_key(b"smtp-password")))


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return None
