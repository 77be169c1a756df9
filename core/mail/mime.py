"""Outbound mail as it goes on the wire (stdlib EmailMessage, policy SMTP)."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache

from core.mail.addresses import header_address
from core.mail.details import text_to_html
from core.models import Message
from core.security import signed_address


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
    mail_from: str
    recipients: list[str]
    message: EmailMessage


def build_email(msg: Message, attachments: list[Attachment] | None = None) -> Envelope:
    """The MIME message and SMTP envelope of an outbox row. Bcc only on the envelope."""
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
    recipients = [*msg.to_addrs, *msg.cc_addrs, *msg.bcc_addrs]
    return Envelope(mail_from=signed_address("b", msg.id), recipients=recipients, message=em)
