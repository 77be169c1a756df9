"""Classify inbound mail carrying iMIP (RFC 6047) / iTIP (RFC 5546) calendar data.

This module finds the calendar data in the mail (MIME parts, transfer encodings, delivery
status notifications); core/mail/itip_interpret.py says what that data means.

Pure functions: no I/O, no database.  Every entry point is total: hostile or broken
input yields ``kind == "none"`` (or a best-effort answer), never an exception.

Kinds (``InboundCalendar.kind``):

* ``reply`` / ``request`` / ``cancel`` / ``publish`` / ``counter`` from the VCALENDAR
  METHOD (``add``, ``refresh``, ``declinecounter`` for the rarer iTIP methods);
* ``reply-without-event``: METHOD:REPLY but no VEVENT (e.g. a VFREEBUSY reply);
* ``no-method``: calendar data without a usable METHOD property.  The MIME ``method=``
  parameter alone does not make a mail iTIP (RFC 6047 §2.4 makes the iCalendar object
  authoritative), and calendar text still carrying transfer encoding (``PARTSTAT=3D...``)
  is not trusted;
* ``bounce``: a delivery status notification.  Quoted calendar data is never read as
  a REPLY/REQUEST; only its VEVENT UIDs are reported (to find the bounced invitation);
* ``none``: no calendar data.

``method`` is informational: the trusted VCALENDAR METHOD, else the MIME ``method=``
parameter.  Decide on ``kind``.  For ``counter``, ``replies`` holds the proposing
attendee(s) and ``proposals`` the proposed times (raw iCalendar values).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value

from core.mail.ical_lines import (
    MAX_TEXT_CHARS,
    decode_base64,
    decode_quoted_printable,
    decode_text,
)
from core.mail.itip_interpret import (
    FoundCalendar,
    InboundCalendar,
    calendars_in,
    event_uids,
    interpret,
    no_calendar,
)

MAX_MAIL_BYTES = 40_000_000  # raw mail examined
MAX_PART_BYTES = 2 * MAX_TEXT_CHARS  # encoded bytes of one calendar part examined
MAX_CALENDAR_PARTS = 20
MAX_MIME_PARTS = 500
MAX_MIME_DEPTH = 64

_CAL_SUBTYPES = {"calendar", "vcalendar", "ics", "ical", "icalendar"}
_CAL_EXTENSIONS = (".ics", ".vcs", ".ical", ".icalendar", ".ifb")
_DSN_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_RETURNED_TYPES = {"message/rfc822", "message/global", "text/rfc822-headers"}
_DAEMON_RE = re.compile(
    r"(?i)\b(?:mailer-daemon|mailerdaemon|mail-daemon|postmaster)@|mail delivery (?:sub)?system"
)
_BOUNCE_SUBJECT_RE = re.compile(
    r"(?i)^\W*(?:undeliver|undelivered mail|returned mail|mail delivery fail|failure notice|"
    r"delivery (?:status notification \(failure|failure|has failed)|non[- ]?deliver|"
    r"message not delivered|unzustellbar|nicht zustellbar|non remis|onbestelbaar|"
    r"no se puede entregar|impossible de remettre)"
)
_DSN_BODY_RE = re.compile(r"(?im)^(?:diagnostic-code:|final-recipient:|action:\s*failed)")


# ----------------------------------------------------------------------------- entry points


def parse_calendar_bytes(data: bytes | str) -> InboundCalendar:
    """Classify a bare iCalendar object (.ics file contents)."""
    try:
        text = data if isinstance(data, str) else decode_text(bytes(data[:MAX_PART_BYTES]))
        return interpret(calendars_in(text, None, seen=set()))
    except Exception:  # hostile input must never escape
        return no_calendar()


def classify_bytes(raw: bytes) -> InboundCalendar:
    """Classify raw .eml bytes (or a bare iCalendar file)."""
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        raw = bytes(raw[:MAX_MAIL_BYTES])
        if _is_bare_calendar(raw):
            return parse_calendar_bytes(raw)
        raw = raw.lstrip(b" \t\r\n")  # blank lines before the headers (saved-file artefact)
        try:
            msg = message_from_bytes(raw, policy=policy.compat32)
        except RecursionError:  # absurd multipart nesting: headers + plain-text scan only
            return _classify_unparsable(raw)
        return classify_message(msg)
    except Exception:
        return no_calendar()


def classify_message(msg: Message) -> InboundCalendar:
    """Classify a parsed mail (compat32 ``Message`` or ``EmailMessage``)."""
    try:
        return _classify(msg)
    except Exception:
        return no_calendar()


def is_delivery_status_notification(msg: Message) -> bool:
    """multipart/report DSN, message/delivery-status part, or MAILER-DAEMON heuristics."""
    try:
        return _is_dsn(msg)
    except Exception:
        return False


# ----------------------------------------------------------------------------- MIME side


def _walk(msg: Message) -> Iterator[tuple[Message, bool]]:
    """Depth-first, iterative, bounded walk; yields (part, inside an attached message)."""
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    seen = 0
    while stack and seen < MAX_MIME_PARTS:
        part, depth, nested = stack.pop()
        seen += 1
        yield part, nested
        children = part.get_payload() if part.is_multipart() else None
        if not isinstance(children, list) or depth >= MAX_MIME_DEPTH:
            continue
        child_nested = nested or part.get_content_type().startswith("message/")
        for child in reversed(children[:MAX_MIME_PARTS]):
            if isinstance(child, Message):
                stack.append((child, depth + 1, child_nested))


def _classify(msg: Message) -> InboundCalendar:
    bounce = is_delivery_status_notification(msg)
    outer: list[FoundCalendar] = []
    nested: list[FoundCalendar] = []
    seen: set[str] = set()
    parts = 0
    for part, inside in _walk(msg):
        if part.is_multipart() or parts >= MAX_CALENDAR_PARTS:
            continue
        try:
            data = _calendar_payload(part)
        except Exception:  # one broken part must not hide the others
            continue
        if data is None:
            continue
        parts += 1
        charset = _safe(part.get_content_charset)
        method = _param(part, "method")
        (nested if inside else outer).extend(calendars_in(decode_text(data, charset), method, seen))
    if bounce:
        return InboundCalendar("bounce", None, [], event_uids(outer + nested))
    if not outer and msg.get_content_type() != "multipart/report":
        outer = nested  # e.g. an invitation forwarded as an attachment
    return interpret(outer)


def _calendar_payload(part: Message) -> bytes | None:
    """Decoded bytes of a part that carries calendar data, else None."""
    ctype = part.get_content_type()
    main, _, sub = ctype.partition("/")
    sub = sub.removeprefix("x-")
    filename = (_safe(part.get_filename) or "").strip().strip("\"'").lower()
    if main in ("multipart", "message"):
        return None
    declared = (main in ("text", "application") and sub in _CAL_SUBTYPES) or filename.endswith(
        _CAL_EXTENSIONS
    )
    disposition = str(part.get("Content-Disposition", "")).lower()
    sniff = ctype == "application/octet-stream" or (
        main == "text" and sub == "plain" and "attachment" in disposition
    )
    if not declared and not sniff:
        return None
    data = _decode_transfer(part)
    if not declared and not _is_bare_calendar(data):
        return None
    return data


def _decode_transfer(part: Message) -> bytes:
    # The undecoded payload: get_payload() would already re-decode 8-bit text with the
    # declared charset, replacing what does not fit (undeclared or wrong charsets).
    payload = getattr(part, "_payload", None)
    if payload is None:
        payload = part.get_payload()
    if isinstance(payload, bytes):
        raw = payload[:MAX_PART_BYTES]
    else:
        text = str(payload)[:MAX_PART_BYTES]
        try:
            raw = text.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:  # built from str with real non-ASCII characters
            raw = text.encode("utf-8", "surrogateescape")
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if "base64" in cte:
        # ':' is no base64 character: plain calendar text under a wrong declaration
        return raw if raw.lstrip()[:6].upper() == b"BEGIN:" else decode_base64(raw)
    if "quoted-printable" in cte:
        return decode_quoted_printable(raw, _safe(part.get_content_charset))
    return raw


def _is_bare_calendar(data: bytes) -> bool:
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = decode_text(head)
    else:
        text = head.decode("latin-1")
    return text.lstrip("\ufeff\xef\xbb\xbf \t\r\n").upper().startswith("BEGIN:VCALENDAR")


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
        text = collapse_rfc2231_value(value) if isinstance(value, tuple) else str(value or "")
    except Exception:
        return None
    return text.strip().strip("\"'").upper() or None


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:
        return str(value)


def _is_dsn(msg: Message) -> bool:
    if msg.get_content_type() == "multipart/report" and (_param(msg, "report-type") or "") in (
        "DELIVERY-STATUS",
        "GLOBAL-DELIVERY-STATUS",
    ):
        return True
    if msg.get("X-Failed-Recipients"):
        return True
    returned = dsn_text = False
    for part, nested in _walk(msg):
        ctype = part.get_content_type()
        if ctype in _DSN_TYPES:
            return True
        returned = returned or ctype in _RETURNED_TYPES
        if not nested and not dsn_text and ctype == "text/plain" and not part.is_multipart():
            dsn_text = bool(_DSN_BODY_RE.search(str(part.get_payload())[:50_000]))
    daemon = _DAEMON_RE.search(_header(msg, "From") + " " + _header(msg, "Sender"))
    bounce_subject = _BOUNCE_SUBJECT_RE.search(_header(msg, "Subject"))
    if daemon and (bounce_subject or dsn_text or returned):
        return True
    null_sender = _header(msg, "Return-Path").strip() == "<>"
    return bool(bounce_subject and null_sender and (returned or dsn_text))


def _classify_unparsable(raw: bytes) -> InboundCalendar:
    """Best effort for mail the stdlib parser cannot build: headers + plain calendar text."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:200_000])
    if _is_dsn(headers):
        return InboundCalendar("bounce", None, [], [])
    seen: set[str] = set()
    found: list[FoundCalendar] = []
    start = raw.find(b"BEGIN:VCALENDAR")
    while start >= 0 and len(seen) < MAX_CALENDAR_PARTS:
        end = raw.find(b"END:VCALENDAR", start, start + MAX_PART_BYTES)
        stop = end + 13 if end >= 0 else start + MAX_PART_BYTES
        found += calendars_in(decode_text(raw[start:stop]), None, seen)
        start = raw.find(b"BEGIN:VCALENDAR", stop)
    return interpret(found)


def _safe(func: Callable[[], object]) -> str | None:
    try:
        value = func()
    except Exception:
        return None
    return value if isinstance(value, str) else None


__all__ = [
    "InboundCalendar",
    "classify_bytes",
    "classify_message",
    "is_delivery_status_notification",
    "parse_calendar_bytes",
]
