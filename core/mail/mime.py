"""Outbound mail as it goes on the wire (stdlib email package, policy SMTP).

Every mail is defined by the stdlib: header values are the stdlib's header objects under
policy SMTP, so a header with CR/LF in it cannot be made (it raises, nothing is filtered).
Two ways turn a message into bytes:

- A mail with attachments, a calendar part or a non-ASCII address is an ``EmailMessage``
  that aiosmtplib flattens for the server's capabilities (SMTPUTF8, 8BITMIME).
- The common mail, text + HTML alternatives and nothing else (every bulk mail), is written
  straight to bytes in the same MIME structure. A header line that is plain short ASCII is
  written as is; any other value goes through the stdlib's header objects and folder, and
  bodies use the stdlib's own choice of 7bit or quoted-printable. Flattening an
  EmailMessage cost about 1.7 ms a mail, most of the worker's CPU in a bulk send; this
  way takes a few hundredths of that. ``tests/unit/test_mime.py`` checks that both ways
  give the same mail (headers, parts, decoded text) over 700 generated messages.
"""

from __future__ import annotations

import binascii
import os
import re
from dataclasses import dataclass
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias

from core.mail.addresses import header_address, is_plain_address, refuse_line_breaks
from core.mail.details import text_to_html
from core.models import Message
from core.security import signed_address

if TYPE_CHECKING:
    from core.services.claims import Outgoing

# An outbox row: the ORM object, or the plain record a worker reads for a chunk.
OutboxRow: TypeAlias = "Message | Outgoing"


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new header class for every header it makes; for bulk
    sending that was a tenth of the CPU. Same classes, made once per header name."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


# policy.SMTP (CRLF, strict header objects: a CR/LF in a header value is refused).
SMTP_POLICY = policy.SMTP.clone(header_factory=_CachingHeaderRegistry())


@lru_cache(maxsize=1024)
def _address_header(name: str, display: str | None, address: str) -> BaseHeader:
    """An address header object, parsed once for repeated values (the From of a bulk)."""
    header: BaseHeader = SMTP_POLICY.header_factory(name, header_address(display, address))
    return header


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Envelope:
    """What goes to the SMTP server: either ready 7-bit bytes or an EmailMessage that the
    transport flattens for the server (SMTPUTF8 / 8BITMIME)."""

    mail_from: str
    recipients: list[str]
    message: EmailMessage | None = None
    data: bytes | None = None

    def parsed(self) -> EmailMessage:
        """The mail as an EmailMessage (for inspection; sending uses the bytes as they are)."""
        if self.message is not None:
            return self.message
        from email import message_from_bytes

        assert self.data is not None
        parsed: EmailMessage = message_from_bytes(self.data, policy=policy.default)  # type: ignore[assignment]
        return parsed


def build_email(msg: OutboxRow, attachments: list[Attachment] | None = None) -> Envelope:
    """The MIME message and SMTP envelope of an outbox row. Bcc only on the envelope."""
    plain = plain_envelope(msg, bool(attachments))
    if plain is not None:
        return Envelope(mail_from=plain[0], recipients=plain[1], data=alternative_bytes(msg))
    return Envelope(mail_from=signed_address("b", msg.id),
                    recipients=[*msg.to_addrs, *msg.cc_addrs, *msg.bcc_addrs],
                    message=email_message(msg, attachments))


def plain_envelope(msg: OutboxRow, attachments: bool) -> tuple[str, list[str]] | None:
    """(MAIL FROM, recipients) of a mail that build_email writes as ready 7-bit bytes
    (text and HTML, ASCII addresses); None for any other shape."""
    recipients = [*msg.to_addrs, *msg.cc_addrs, *msg.bcc_addrs]
    mail_from = signed_address("b", msg.id)
    # (mail_from carries the inbound domain, as the Reply-To address does.)
    if not attachments and not msg.ics and _ascii(msg.from_address, mail_from, *recipients):
        return mail_from, recipients
    return None


def email_message(msg: OutboxRow, attachments: list[Attachment] | None = None) -> EmailMessage:
    """The outbox row as a stdlib EmailMessage (any shape: calendar parts, attachments)."""
    em = EmailMessage(policy=SMTP_POLICY)
    em["From"] = _address_header("From", msg.from_name, msg.from_address)
    em["To"] = [header_address(None, a) for a in msg.to_addrs]
    if msg.cc_addrs:
        em["Cc"] = [header_address(None, a) for a in msg.cc_addrs]
    em["Reply-To"] = header_address(msg.from_name, signed_address("r", msg.id))
    em["Subject"] = msg.subject
    em["Date"] = format_datetime(msg.created_at)
    em["Message-ID"] = f"<{msg.rfc_message_id}>"
    if msg.in_reply_to:
        em["In-Reply-To"] = msg.in_reply_to
    em["Auto-Submitted"] = "no"
    em["X-Recruitmail-Message"] = str(msg.id)

    em.set_content(msg.body, subtype="plain", charset="utf-8")
    em.add_alternative(msg.body_html or text_to_html(msg.body), subtype="html", charset="utf-8")
    if msg.ics:
        method = (msg.ics_method or "REQUEST").upper()
        # RFC 6047: the calendar object as an alternative with method=, which clients
        # turn into Accept/Decline buttons...
        em.add_alternative(msg.ics, subtype="calendar", charset="utf-8",
                           params={"method": method})
    for att in attachments or []:
        maintype, _, subtype = att.content_type.partition("/")
        em.add_attachment(att.data, maintype=maintype or "application",
                          subtype=subtype or "octet-stream", filename=att.filename)
    if msg.ics:
        # ...and as an .ics attachment, which clients without iMIP support can import.
        name = "cancel.ics" if (msg.ics_method or "").upper() == "CANCEL" else "invite.ics"
        em.add_attachment(msg.ics.encode(), maintype="application", subtype="ics",
                          filename=name)
    return em


def _ascii(*values: str) -> bool:
    return all(v.isascii() for v in values)


# --- the text + HTML mail written straight to bytes -------------------------------------

# A value written as is: printable ASCII words separated by single spaces, nothing that
# could read as an encoded word. Anything else is the stdlib's to encode and fold.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
# A display name the stdlib writes without quotes or encoding.
_PLAIN_PHRASE = re.compile(r"[A-Za-z0-9'_-]+(?: [A-Za-z0-9'_-]+)*")
_MAX_LINE: int = SMTP_POLICY.max_line_length or 78
_CRLF = "\r\n"


def _stdlib_line(name: str, value: object) -> str:
    """The header as the stdlib's header object folds it (encoded words, quoting)."""
    header = SMTP_POLICY.header_store_parse(name, value)[1]
    return SMTP_POLICY.fold_binary(name, header).decode("ascii")


@lru_cache(maxsize=4096)
def _text_line(name: str, value: str) -> str:
    # CR/LF raises here; other line separators fail _PLAIN and raise in the stdlib.
    refuse_line_breaks(value)
    if "=?" not in value and len(name) + 2 + len(value) <= _MAX_LINE and _PLAIN.fullmatch(value):
        return f"{name}: {value}{_CRLF}"
    return _stdlib_line(name, value)


def _plain_mailbox(display: str | None, address: str) -> str | None:
    display = " ".join((display or "").split())
    if not is_plain_address(address):
        return None
    if not display:
        return address
    if "=?" in display or not _PLAIN_PHRASE.fullmatch(display):
        return None
    return f"{display} <{address}>"


@lru_cache(maxsize=4096)
def _address_line(name: str, mailboxes: tuple[tuple[str | None, str], ...]) -> str:
    for display, address in mailboxes:
        refuse_line_breaks(display, address)
    plain = [_plain_mailbox(d, a) for d, a in mailboxes]
    if all(p is not None for p in plain):
        line = f"{name}: {', '.join(p for p in plain if p)}"
        if len(line) <= _MAX_LINE:
            return line + _CRLF
        if len(mailboxes) == 1 and " <" in line:
            # "Name: Display Name" and " <address>" on a continuation line, as the stdlib
            # folds a mailbox that does not fit on one line.
            head, _, addr = line.rpartition(" <")
            if len(head) <= _MAX_LINE and len(addr) + 2 <= _MAX_LINE:
                return f"{head}{_CRLF} <{addr}{_CRLF}"
    return _stdlib_line(name, [header_address(d, a) for d, a in mailboxes])


@lru_cache(maxsize=256)
def _date_line(when: object) -> str:
    return _text_line("Date", format_datetime(when))  # type: ignore[arg-type]


def _encode_body(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body with CRLF line ends): 7bit when the text is ASCII
    with lines of at most 78 characters (the stdlib's rule), else quoted-printable."""
    lines = text.encode("utf-8").splitlines()
    if text.isascii() and max((len(x) for x in lines), default=0) <= _MAX_LINE:
        return "7bit", b"\r\n".join(lines) + b"\r\n"
    qp = binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True)
    return "quoted-printable", qp.replace(b"\n", b"\r\n")


_TEXT_HEADERS = {
    (subtype, cte): (f'Content-Type: text/{subtype}; charset="utf-8"{_CRLF}'
                     f"Content-Transfer-Encoding: {cte}{_CRLF}{_CRLF}").encode()
    for subtype in ("plain", "html") for cte in ("7bit", "quoted-printable")
}


def alternative_bytes(msg: OutboxRow) -> bytes:
    """The text + HTML mail of an outbox row as 7-bit bytes with CRLF line ends."""
    lines = [_address_line("From", ((msg.from_name, msg.from_address),)),
             _address_line("To", tuple((None, a) for a in msg.to_addrs))]
    if msg.cc_addrs:
        lines.append(_address_line("Cc", tuple((None, a) for a in msg.cc_addrs)))
    lines.append(_address_line("Reply-To", ((msg.from_name, signed_address("r", msg.id)),)))
    lines.append(_text_line("Subject", msg.subject))
    lines.append(_date_line(msg.created_at))
    lines.append(_text_line("Message-ID", f"<{msg.rfc_message_id}>"))
    if msg.in_reply_to:
        lines.append(_text_line("In-Reply-To", msg.in_reply_to))
    lines.append(f"Auto-Submitted: no{_CRLF}X-Recruitmail-Message: {msg.id}{_CRLF}")
    text_cte, text = _encode_body(msg.body)
    html_cte, html = _encode_body(msg.body_html or text_to_html(msg.body))
    boundary = _boundary(text, html)
    lines.append(f'MIME-Version: 1.0{_CRLF}Content-Type: multipart/alternative;'
                 f' boundary="{boundary}"{_CRLF}{_CRLF}')
    delimiter = f"--{boundary}{_CRLF}".encode()
    return b"".join((
        "".join(lines).encode("ascii"),
        delimiter, _TEXT_HEADERS["plain", text_cte], text,
        b"\r\n", delimiter, _TEXT_HEADERS["html", html_cte], html,
        f"{_CRLF}--{boundary}--{_CRLF}".encode(),
    ))


def _boundary(*bodies: bytes) -> str:
    # "=_" never occurs in quoted-printable text; a 7bit body is checked.
    while True:
        boundary = "=_" + os.urandom(12).hex()
        token = boundary.encode()
        if not any(token in b for b in bodies):
            return boundary
