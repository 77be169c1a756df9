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


def is_plain_address(address: str) -> bool:
    """An ASCII dot-atom mailbox: written as is on an SMTP command line and in a header."""
    return address.isascii() and _ADDR_RE.fullmatch(address) is not None


def refuse_line_breaks(*values: str | None) -> None:
    """The stdlib's rule for header values: a CR or LF raises, it is never folded away."""
    if any(v and ("\r" in v or "\n" in v) for v in values):
        raise ValueError("Header values may not contain linefeed or carriage return characters")


def header_address(name: str | None, address: str) -> Address:
    """A mailbox for a header; runs of spaces in the name become one. A line break in the
    name or address is refused (ValueError), never folded away."""
    refuse_line_breaks(name, address)
    local, _, domain = address.rpartition("@")
    return Address(display_name=" ".join((name or "").split()), username=local, domain=domain)
