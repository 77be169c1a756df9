"""One accepted mail, read once at DATA into plain values (no database, no I/O).

``parse_mail`` is total: hostile input yields ``readable=False`` with the problem in
words, never an exception. It is CPU work, so the handler runs it in a thread.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from core.mail.itip import classify_message
from core.mail.itip_interpret import CalendarReply, InboundCalendar
from core.services.inbound import ATTACHMENT_LIMIT, safe_text
from inbound.bounces import DeliveryReport, parse_delivery_report
from inbound.replies import auto_reply_reason
from inbound.text import header_text, html_to_text, iter_parts, part_bytes, part_text

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 1_000_000
MAX_ATTACHMENTS = 20
MAX_BOUNDARIES = 400  # no real mail declares more; deeper nesting is an attack
_MSGID_RE = re.compile(r"<([^<>\s]{1,250})>")


@dataclass
class MailAttachment:
    filename: str
    content_type: str
    size: int
    data: bytes | None  # None when skipped (see note)
    note: str | None = None


@dataclass
class ParsedMail:
    size: int
    readable: bool = True
    problem: str | None = None
    message_id: str | None = None  # without <>
    in_reply_to: str | None = None
    subject: str = ""
    from_name: str = ""
    from_address: str = ""
    auto_reply: str | None = None
    text: str = ""
    attachments: list[MailAttachment] = field(default_factory=list)
    calendar: InboundCalendar = field(
        default_factory=lambda: InboundCalendar("none", None, [], [])
    )
    report: DeliveryReport | None = None

    @property
    def is_dsn(self) -> bool:
        return self.calendar.kind == "bounce"

    @property
    def replies(self) -> list[CalendarReply]:
        return self.calendar.replies


def _message_id(value: str) -> str | None:
    m = _MSGID_RE.search(value)
    if m:
        return m.group(1)
    text = value.strip()
    return text if text and len(text) <= 250 and not re.search(r"\s", text) else None


def _sender(msg: Message) -> tuple[str, str]:
    value = header_text(msg, "From")[:2000]
    try:
        pairs = getaddresses([value])
    except Exception:
        pairs = []
    name, address = pairs[0] if pairs else ("", "")
    if "@" not in address:
        name, address = name or value, ""
    return safe_text(" ".join(name.split()), 300), safe_text(address.strip(), 320)


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _filename(part: Message, index: int, ctype: str) -> str:
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except Exception:
        name = ""
    if isinstance(name, tuple):  # RFC 2231 leftovers
        name = str(name[-1])
    name = header_text(_Named(str(name)), "x")
    name = re.sub(r"[\x00-\x1f\x7f/\\:]+", "_", name).strip(" .")
    if not name:
        ext = mimetypes.guess_extension(ctype) or ".bin"
        name = f"attachment-{index}{ext}"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot and len(ext) < 10 else name[:200]
    return name


class _Named(Message):
    """A one-header message so a bare value can go through header_text's decoding."""

    def __init__(self, value: str) -> None:
        super().__init__()
        self["x"] = value.replace("\r", " ").replace("\n", " ")


def _is_body_candidate(part: Message, ctype: str) -> bool:
    return ctype in ("text/plain", "text/html") and _disposition(part) != "attachment"


def _is_attachment(part: Message, ctype: str) -> bool:
    disposition = _disposition(part)
    if ctype.startswith(("multipart/", "message/delivery-status", "message/global-delivery")):
        return False
    if disposition == "attachment":
        return True
    if _is_body_candidate(part, ctype):
        return False
    if ctype in ("text/calendar", "application/ics", "text/x-vcalendar"):
        return False  # the iMIP alternative, not a file the candidate attached
    if ctype.startswith("image/") and part.get("Content-ID") and disposition != "attachment":
        return False  # inline images of an HTML body (signature logos)
    try:
        has_name = bool(part.get_filename() or part.get_param("name"))
    except Exception:
        has_name = False
    return has_name or not ctype.startswith("text/")


def _collect(msg: Message, result: ParsedMail) -> None:
    plain: str | None = None
    html: str | None = None
    count = 0
    for part, nested in iter_parts(msg):
        ctype = part.get_content_type()
        if nested or (part.is_multipart() and ctype != "message/rfc822"):
            continue
        if plain is None and ctype == "text/plain" and _is_body_candidate(part, ctype):
            text = part_text(part, MAX_BODY_CHARS)
            if text.strip():
                plain = text
            continue
        if html is None and ctype == "text/html" and _is_body_candidate(part, ctype):
            html = part_text(part, MAX_BODY_CHARS)
            continue
        if not _is_attachment(part, ctype):
            continue
        count += 1
        name = _filename(part, count, ctype)
        if count > MAX_ATTACHMENTS:
            result.attachments.append(MailAttachment(name, ctype, 0, None,
                                                     f"more than {MAX_ATTACHMENTS} attachments"))
            continue
        if ctype == "message/rfc822":
            inner = part.get_payload()
            try:
                first = inner[0] if isinstance(inner, list) and inner else None
                data = first.as_bytes() if isinstance(first, Message) else b""
            except Exception:  # too deep or broken to re-serialise
                data = b""
            if not name.lower().endswith(".eml"):
                name = f"{name.rsplit('.', 1)[0] if '.' in name else name}.eml"
        else:
            data = part_bytes(part)
        if len(data) > ATTACHMENT_LIMIT:
            mb = len(data) / 1_048_576
            result.attachments.append(MailAttachment(
                name, ctype, len(data), None,
                f"{name} ({mb:.1f} MB) is larger than the {ATTACHMENT_LIMIT // 1_048_576} MB limit",
            ))
        else:
            result.attachments.append(MailAttachment(name, ctype[:255], len(data), data))
    if plain is not None:
        result.text = plain
    elif html is not None:
        result.text = html_to_text(html)


def _headers(msg: Message, result: ParsedMail) -> None:
    result.message_id = _message_id(header_text(msg, "Message-ID"))
    reply_to = header_text(msg, "In-Reply-To")
    result.in_reply_to = safe_text(reply_to.strip(), 998) or None
    result.subject = safe_text(" ".join(header_text(msg, "Subject").split()), 998)
    result.from_name, result.from_address = _sender(msg)
    result.auto_reply = auto_reply_reason(msg)


def parse_mail(raw: bytes) -> ParsedMail:
    """Read a mail as it came over SMTP. Never raises."""
    result = ParsedMail(size=len(raw))
    try:
        if raw[:1_000_000].lower().count(b"boundary") > MAX_BOUNDARIES:
            raise RecursionError("too many nested MIME parts")
        msg = message_from_bytes(raw, policy=compat32)
    except (RecursionError, MemoryError) as exc:
        result.readable = False
        result.problem = f"MIME structure not readable ({exc.__class__.__name__}: {exc})"[:300]
        try:
            _headers(BytesHeaderParser(policy=compat32).parsebytes(raw[:200_000]), result)
        except Exception:
            pass
        return result
    except Exception as exc:
        result.readable = False
        result.problem = f"mail not readable ({exc.__class__.__name__})"
        return result
    try:
        _headers(msg, result)
        result.calendar = classify_message(msg)
        if result.is_dsn:
            result.report = parse_delivery_report(msg)
        _collect(msg, result)
        result.text = safe_text(result.text, MAX_BODY_CHARS)
    except RecursionError as exc:
        result.readable = False
        result.problem = f"MIME structure not readable (RecursionError: {exc})"[:300]
    except Exception as exc:  # a parser corner we did not foresee: keep the copy, say so
        log.exception("could not read an inbound mail")
        result.readable = False
        result.problem = f"mail not readable ({exc.__class__.__name__})"
    return result
