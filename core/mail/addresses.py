"""Email address validation and formatting (no header may carry CR/LF)."""

from __future__ import annotations

import re
from email.headerregistry import Address

# Practical RFC 5321 mailbox: dot-atom local part (or a quoted one is refused: no real
# candidate needs it), a domain of LDH labels. Internationalised domains are allowed as
# Unicode labels; the SMTP layer sends them with SMTPUTF8 where supported.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?"
_ADDR_RE = re.compile(rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})*$")


def normalize_address(value: str | None) -> str | None:
    """The address trimmed, with a lower-cased domain; None when it is not a valid mailbox."""
    if value is None:
        return None
    addr = value.strip()
    if not addr or len(addr) > 254 or any(c in addr for c in "\r\n\0 <>,;\"\t"):
        return None
    if not _ADDR_RE.match(addr):
        return None
    local, _, domain = addr.rpartition("@")
    if len(local) > 64:
        return None
    return f"{local}@{domain.lower()}"


def header_address(name: str | None, address: str) -> Address:
    """A mailbox for a header; runs of spaces in the name become one. A line break in the
    name or address is refused (ValueError), never folded away."""
    if any(c in (name or "") + address for c in "\r\n"):
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    local, _, domain = address.rpartition("@")
    return Address(display_name=" ".join((name or "").split()), username=local, domain=domain)
