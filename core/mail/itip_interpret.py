"""Interpretation of iTIP (RFC 5546) calendar objects: the METHOD, replies, proposed times.

Pure functions: no I/O, no database.  Turns calendar text (already taken out of the mail by
core/mail/itip.py) into the answer ``InboundCalendar``: its ``kind`` from the trusted
VCALENDAR METHOD, the attendees' replies (REPLY, COUNTER), the proposed times (COUNTER) and
the VEVENT UIDs.  Calendar text still carrying transfer encoding is not trusted: it keeps
its UIDs but gives no METHOD.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote

from icalendar.prop import vDDDTypes

from core.mail.ical_lines import (
    Component,
    ContentLine,
    clean_comment,
    looks_transfer_encoded,
    parse_components,
    unfold,
)

_ITIP_METHODS = frozenset("REPLY REQUEST CANCEL PUBLISH COUNTER DECLINECOUNTER ADD REFRESH".split())
_KEEP = frozenset(
    "METHOD UID ATTENDEE COMMENT SEQUENCE RECURRENCE-ID DTSTAMP DTSTART DTEND".split()
)
_VCALENDAR_RE = re.compile(r"(?i)BEGIN:VCALENDAR")


@dataclass(frozen=True)
class CalendarReply:
    uid: str
    attendee: str  # lower-cased address, no mailto:
    partstat: str  # upper-case, NEEDS-ACTION when absent
    comment: str | None  # COMMENT, else the ATTENDEE's X-RESPONSE-COMMENT (Google)
    sequence: int | None
    recurrence_id: str | None  # raw value
    dtstamp: datetime | None


@dataclass(frozen=True)
class ProposedTime:
    """A COUNTER proposal; values are raw iCalendar strings (``20240105T100000``)."""

    uid: str
    recurrence_id: str | None
    dtstart: str | None
    dtend: str | None
    tzid: str | None  # TZID parameter of DTSTART


@dataclass(frozen=True)
class InboundCalendar:
    kind: str
    method: str | None
    replies: list[CalendarReply]
    uids: list[str]
    proposals: list[ProposedTime] = field(default_factory=list)


@dataclass
class FoundCalendar:
    """One VCALENDAR found in a mail or file, with the MIME ``method=`` of its part."""

    calendar: Component
    mime_method: str | None
    trusted: bool

    @property
    def method(self) -> str | None:
        """Trusted METHOD of the VCALENDAR (or, misplaced, of its first component)."""
        if not self.trusted:
            return None
        value = self.calendar.value("METHOD")
        if not value and self.calendar.children:
            value = self.calendar.children[0].value("METHOD")
        return re.sub(r"\s+", "", value or "").upper() or None


def no_calendar() -> InboundCalendar:
    """The answer for no calendar data (kind ``none``)."""
    return InboundCalendar("none", None, [], [])


def calendars_in(text: str, mime_method: str | None, seen: set[str]) -> list[FoundCalendar]:
    """The VCALENDARs of calendar text; none when ``seen`` already holds the same text."""
    start = _VCALENDAR_RE.search(text)  # skip junk (mail residue) before it
    lines = unfold((text[start.start() :] if start else text).replace("\ufeff", ""))
    key = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()
    if key in seen:  # the same calendar sent twice (text/calendar + application/ics)
        return []
    seen.add(key)
    trusted = not looks_transfer_encoded(lines)
    return [FoundCalendar(cal, mime_method, trusted) for cal in parse_components(lines, _KEEP)]


def interpret(found: list[FoundCalendar]) -> InboundCalendar:
    """What the calendars found in one mail (or file) say, as one answer."""
    if not found:
        return no_calendar()
    uids = event_uids(found)
    method = next((f.method for f in found if f.method), None)
    if method is None:
        mime = next((f.mime_method for f in found if f.mime_method), None)
        return InboundCalendar("no-method", mime, [], uids)
    kind = method.lower() if method in _ITIP_METHODS else "no-method"
    same = [f.calendar for f in found if f.method == method]
    events = [event for cal in same for event in cal.sub("VEVENT")]
    if method == "REPLY" and not events:
        return InboundCalendar("reply-without-event", method, [], uids)
    replies: list[CalendarReply] = []
    proposals: list[ProposedTime] = []
    if method in ("REPLY", "COUNTER"):
        keys: set[tuple[str, str, str | None]] = set()
        for event in events:
            for reply in _event_replies(event):
                if (reply.uid, reply.attendee, reply.recurrence_id) not in keys:
                    keys.add((reply.uid, reply.attendee, reply.recurrence_id))
                    replies.append(reply)
    if method == "COUNTER":
        proposals = [_proposal(event) for event in events]
    return InboundCalendar(kind, method, replies, uids, proposals)


def event_uids(found: list[FoundCalendar]) -> list[str]:
    """The VEVENT UIDs of the calendars, first seen first, without repeats."""
    uids = (event.value("UID") for f in found for event in f.calendar.sub("VEVENT"))
    return list(dict.fromkeys(uid for uid in uids if uid))


def _event_replies(event: Component) -> list[CalendarReply]:
    uid = event.value("UID") or ""
    comment = next((c for line in event.all("COMMENT") if (c := clean_comment(line.value))), None)
    sequence = _int(event.value("SEQUENCE"))
    recurrence_id = event.value("RECURRENCE-ID") or None
    dtstamp = _datetime(event.value("DTSTAMP"))
    replies = []
    for line in event.all("ATTENDEE"):
        address = _address(line)
        if not address:
            continue
        partstat = re.sub(r"\s+", "", line.param("PARTSTAT") or "").upper() or "NEEDS-ACTION"
        google = ",".join(line.params.get("X-RESPONSE-COMMENT", [])) or None
        text = comment or clean_comment(google, html_escaped=True)
        replies.append(
            CalendarReply(uid, address, partstat, text, sequence, recurrence_id, dtstamp)
        )
    return replies


def _proposal(event: Component) -> ProposedTime:
    start = event.first("DTSTART")
    return ProposedTime(
        uid=event.value("UID") or "",
        recurrence_id=event.value("RECURRENCE-ID") or None,
        dtstart=start.value.strip() if start else None,
        dtend=event.value("DTEND"),
        tzid=start.param("TZID") if start else None,
    )


def _address(line: ContentLine) -> str:
    """Calendar user address: after the last ``mailto:``, no folding blanks, lower-case;
    the EMAIL parameter when the value is no address (CalendarServer principal URLs)."""
    value = line.value
    at = value.lower().rfind("mailto:")
    if at >= 0:
        value = value[at + 7 :]
    value = re.sub(r"\s+", "", value)
    angle = re.search(r"<([^<>]+@[^<>]+)>", value)  # "Name <addr>" written as the value
    value = angle.group(1) if angle else value.strip("<>\"'")
    if "@" not in value:
        email = re.sub(r"\s+", "", line.param("EMAIL") or "").strip("<>\"'")
        value = email if "@" in email else value
    if "%" in value:
        value = unquote(value)
    return value.lower()


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None


def _datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = vDDDTypes.from_ical(value.strip())
    except Exception:
        return None
    return parsed if isinstance(parsed, datetime) else None
