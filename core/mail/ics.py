"""Outbound iMIP (RFC 6047) / iTIP (RFC 5546) calendar objects: METHOD:REQUEST and CANCEL.

One VEVENT per object, with a VTIMEZONE generated from tzdata for the event's zone (DTSTART
and DTEND carry TZID=<zone> local times; a UTC event uses the ``Z`` form and no VTIMEZONE).

The VTIMEZONE is built here rather than with ``icalendar.Timezone.from_tzid`` because the
latter writes the onset of daylight saving time in the new offset (03:00 for Europe's
02:00 change), one hour off what RFC 5545 section 3.6.5 specifies. Observances follow
yearly rules (RRULE, what Outlook and Google expect) where tzdata's transitions around the
event follow one; otherwise they list the exact transitions (RDATE). Either way the
definition is exact for the years around the event. Inbound parsing lives in itip.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress

__all__ = ["PRODID", "EventSpec", "build_cancel", "build_request", "vtimezone"]

PRODID = "-//recruitmail//recruitmail 0.1//EN"

_UTC_NAMES = frozenset({
    "UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu",
    "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0", "GMT+0", "GMT-0",
    "Greenwich", "Etc/Greenwich",
})
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_STATUSES = ("TENTATIVE", "CONFIRMED", "CANCELLED")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ADDRESS = re.compile(r"[^@\s<>\"(),;:\\\[\]]+@[^@\s<>\"(),;:\\\[\]]+")


@dataclass
class EventSpec:
    """An interview as a calendar event. ``starts_at``/``ends_at`` are aware datetimes (naive
    is taken as UTC); ``timezone`` is the IANA zone the event is shown in (unknown → UTC).
    The caller keeps ``uid`` stable and bumps ``sequence`` on every reschedule or cancel."""

    uid: str
    sequence: int
    summary: str
    description: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    location: str | None
    video_link: str | None
    organizer_name: str
    organizer_email: str
    attendee_name: str
    attendee_email: str
    dtstamp: datetime | None = None
    status: str = "CONFIRMED"


def build_request(spec: EventSpec) -> str:
    """The METHOD:REQUEST calendar (invitation or reschedule) as iCalendar text (CRLF)."""
    return _build(spec, "REQUEST", spec.status or "CONFIRMED")


def build_cancel(spec: EventSpec) -> str:
    """The METHOD:CANCEL calendar: same UID, STATUS:CANCELLED, SEQUENCE as given (the caller
    bumps it)."""
    return _build(spec, "CANCEL", "CANCELLED")


# --------------------------------------------------------------------------- VEVENT


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _zone(name: str | None) -> tuple[str, tzinfo]:
    name = (name or "").strip()
    if name and name not in _UTC_NAMES:
        try:
            zone = ZoneInfo(name)
            return zone.key, zone
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
            pass
    return "UTC", UTC


def _line(text: str | None) -> str:
    return " ".join(_CONTROL.sub(" ", text or "").split())


def _text(text: str | None) -> str:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()


def _cn(name: str) -> str:
    # Outlook ignores RFC 6868 (^'), so a double quote becomes a single one.
    return _line(name).replace('"', "'")


def _address(email: str, role: str) -> str:
    email = (email or "").strip()
    if email.lower().startswith("mailto:"):
        email = email[7:]
    if not _ADDRESS.fullmatch(email) or _CONTROL.search(email):
        raise ValueError(f"{role} e-mail address is not valid: {email!r}")
    return f"mailto:{email}"


def _http_url(link: str | None) -> str | None:
    link = (link or "").strip()
    if not link or _CONTROL.search(link) or any(c in link for c in ' "<>\\{}|^`'):
        return None
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    return link if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def _check(spec: EventSpec) -> None:
    if not _line(spec.uid):
        raise ValueError("UID must not be empty")
    if isinstance(spec.sequence, bool) or not isinstance(spec.sequence, int) \
            or spec.sequence < 0:
        raise ValueError(f"SEQUENCE must be a non-negative integer, not {spec.sequence!r}")
    if _aware_utc(spec.ends_at) <= _aware_utc(spec.starts_at):
        raise ValueError("the event must end after it starts")
    if (spec.status or "CONFIRMED").upper() not in _STATUSES:
        raise ValueError(f"STATUS must be one of {', '.join(_STATUSES)}, not {spec.status!r}")


def _build(spec: EventSpec, method: str, status: str) -> str:
    _check(spec)
    zone_name, zone = _zone(spec.timezone)
    start = _aware_utc(spec.starts_at).astimezone(zone)
    end = _aware_utc(spec.ends_at).astimezone(zone)

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    if zone is not UTC:
        cal.add_component(vtimezone(zone_name, zone, start.date(), end.date()))

    video = _line(spec.video_link) or None
    description = _text(spec.description)
    if video and video not in description:
        description = f"{description}\n\nVideo: {video}" if description else f"Video: {video}"
    location = _line(spec.location) or video

    event = Event()
    event.add("uid", _line(spec.uid))
    event.add("sequence", spec.sequence)
    event.add("dtstamp", _aware_utc(spec.dtstamp or datetime.now(UTC)))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", _line(spec.summary))
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    url = _http_url(video)
    if url:
        event.add("url", url)
    organizer = vCalAddress(_address(spec.organizer_email, "organizer"))
    if _cn(spec.organizer_name):
        organizer.params["CN"] = _cn(spec.organizer_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(_address(spec.attendee_email, "attendee"))
    if _cn(spec.attendee_name):
        attendee.params["CN"] = _cn(spec.attendee_name)
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = "NEEDS-ACTION"
    if method == "REQUEST":
        attendee.params["RSVP"] = "TRUE"
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    event.add("attendee", attendee)
    event.add("status", status.upper())
    event.add("transp", "OPAQUE")
    cal.add_component(event)
    return cal.to_ical().decode("utf-8")


# --------------------------------------------------------------------------- VTIMEZONE

_State = tuple[timedelta, timedelta, str]  # UTC offset, DST amount, abbreviation


def _state(zone: tzinfo, instant: datetime) -> _State:
    local = instant.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    return offset, local.dst() or timedelta(0), local.tzname() or _offset_name(offset)


def _offset_name(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _transitions(zone: tzinfo, lo: datetime, hi: datetime) -> list[tuple[datetime, _State,
                                                                          _State]]:
    """(UTC instant, state before, state after) for each change of offset/DST/name."""
    found = []
    step = timedelta(days=1)
    t, state = lo, _state(zone, lo)
    while t < hi:
        nxt = min(t + step, hi)
        after = _state(zone, nxt)
        if after != state:
            a, b = t, nxt  # state(a) == state, state(b) != state
            while b - a > timedelta(seconds=1):
                mid = a + (b - a) / 2
                mid = mid.replace(microsecond=0)
                if _state(zone, mid) == state:
                    a = mid
                else:
                    b = mid
            after = _state(zone, b)
            found.append((b, state, after))
            t, state = b, after
            continue
        t = nxt
    return found


def _yearly_rule(onsets: list[datetime]) -> dict[str, object] | None:
    """RRULE parts matching every onset (same month, weekday, time; nth or last weekday)."""
    first = onsets[0]
    specs: set[int] | None = None
    for onset in onsets:
        if (onset.month, onset.weekday(), onset.time()) != (first.month, first.weekday(),
                                                            first.time()):
            return None
        month_days = ((onset.replace(day=28) + timedelta(days=4)).replace(day=1)
                      - timedelta(days=1)).day
        options = {(onset.day - 1) // 7 + 1}
        if onset.day + 7 > month_days:
            options.add(-1)
        specs = options if specs is None else specs & options
    if not specs:
        return None
    nth = -1 if -1 in specs else min(specs)
    return {"FREQ": "YEARLY", "BYMONTH": first.month, "BYDAY": f"{nth}{_WEEKDAYS[first.weekday()]}"}


def _observance(state_from: _State, state_to: _State, onset: datetime,
                negative_dst: bool) -> TimezoneStandard | TimezoneDaylight:
    # tzdata writes Europe/Dublin's winter (and Casablanca's Ramadan) as negative DST;
    # calendar clients expect the lower offset as STANDARD, so the rest is DAYLIGHT there.
    dst = state_to[1]
    daylight = dst > timedelta(0) or (negative_dst and dst == timedelta(0))
    part = TimezoneDaylight() if daylight else TimezoneStandard()
    part.add("dtstart", onset)
    part.add("tzoffsetfrom", state_from[0])
    part.add("tzoffsetto", state_to[0])
    part.add("tzname", state_to[2])
    return part


def vtimezone(tzid: str, zone: tzinfo, first: date, last: date) -> Timezone:
    """A VTIMEZONE for ``zone`` that is exact from the year before ``first`` to the year
    after ``last`` (onsets in local time before the change, as RFC 5545 specifies)."""
    first_year, last_year = max(first.year - 1, 1), min(last.year + 1, 9998)
    lo = datetime(first_year, 1, 1, tzinfo=UTC)
    hi = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    component = Timezone()
    component.add("tzid", tzid)
    initial = _state(zone, lo)
    transitions = _transitions(zone, lo, hi)
    negative = initial[1] < timedelta(0) or any(t[2][1] < timedelta(0) for t in transitions)
    component.add_component(_observance(initial, initial,
                                        lo.astimezone(zone).replace(tzinfo=None), negative))
    groups: dict[tuple[_State, _State], list[datetime]] = {}
    for instant, before, after in transitions:
        # the onset is the local wall-clock time before the change (RFC 5545 3.6.5)
        groups.setdefault((before, after), []).append((instant + before[0]).replace(tzinfo=None))
    years = last_year - first_year + 1
    for (before, after), onsets in groups.items():
        part = _observance(before, after, onsets[0], negative)
        rule = None
        if len(onsets) == years and len({o.year for o in onsets}) == years:
            rule = _yearly_rule(onsets)
        if rule is not None:
            part.add("rrule", rule)
        elif len(onsets) > 1:
            part.add("rdate", onsets[1:])
        component.add_component(part)
    return component
