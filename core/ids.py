"""Global, opaque Relay IDs: base64url("Type:uuid")."""

from __future__ import annotations

import base64
import binascii
import uuid


def to_global_id(type_name: str, pk: uuid.UUID | str) -> str:
    raw = f"{type_name}:{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def from_global_id(gid: str) -> tuple[str, uuid.UUID] | None:
    """(type name, uuid) or None when the id is not one of ours."""
    try:
        padded = gid + "=" * (-len(gid) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        type_name, _, pk = text.partition(":")
        return type_name, uuid.UUID(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def parse_id(gid: str | None, expected_type: str) -> uuid.UUID | None:
    """The uuid of a global id of the expected type, else None."""
    if not gid:
        return None
    parsed = from_global_id(gid)
    if parsed is None or parsed[0] != expected_type:
        return None
    return parsed[1]
