"""What templates can know: the render context, the placeholder catalogue, the locale and
time-zone helpers, the interview "copy details" block and the plain-text helpers
(text_to_html, with_signature). The public names are re-exported by core.mail.render.

Everything the candidate reads about an interview's time is shown in the candidate's
language and time zone (not the interview's own zone): see design/placeholders.md.
Pure functions; unknown languages fall back to English, unknown zones to UTC.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time

__all__ = [
    "CONTROL_CHARS",
    "DEFAULT_LANGUAGE",
    "KINDS",
    "PLACEHOLDERS",
    "CandidateCtx",
    "CompanyCtx",
    "InterviewCtx",
    "PlaceholderSpec",
    "PositionCtx",
    "RejectionCtx",
    "RenderContext",
    "SenderCtx",
    "format_long_date",
    "format_short_time",
    "interview_details",
    "localize",
    "placeholders_for",
    "resolve_locale",
    "resolve_timezone",
    "text_to_html",
    "with_signature",
]

DEFAULT_LANGUAGE = "en"
# C0/C1 control characters except TAB and LF
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class InterviewCtx:
    """What the templates may say about an interview (filled by the service layer).

    ``starts_at``/``ends_at`` are aware datetimes (UTC from the database; a naive value is
    taken as UTC). ``timezone`` is where the interview takes place; placeholders are
    nevertheless rendered in the candidate's zone.
    """

    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    location: str | None = None
    video_link: str | None = None
    interviewers: list[str] = field(default_factory=list)


_LABELS: dict[str, dict[str, str]] = {
    "en": {"date": "Date", "time": "Time", "location": "Location",
           "video": "Video link", "interviewers": "Interviewers"},
    "nl": {"date": "Datum", "time": "Tijd", "location": "Locatie",
           "video": "Videolink", "interviewers": "Interviewers"},
    "de": {"date": "Datum", "time": "Uhrzeit", "location": "Ort",
           "video": "Videolink", "interviewers": "Interviewer"},
    "fr": {"date": "Date", "time": "Heure", "location": "Lieu",
           "video": "Lien vidéo", "interviewers": "Intervenants"},
    "es": {"date": "Fecha", "time": "Hora", "location": "Lugar",
           "video": "Enlace de vídeo", "interviewers": "Entrevistadores"},
}

# CLDR puts narrow/no-break spaces into some time formats ("8:00\u202fAM"); plain text mail
# is read by many clients and parsers that mishandle them, so they become ordinary spaces.
_ODD_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


def resolve_locale(language: str | None) -> Locale:
    """Babel locale for a candidate language tag ("nl", "nl-NL", "pt_BR"); English if unusable."""
    if language and isinstance(language, str):
        tag = language.strip().replace("-", "_")
        if tag and len(tag) <= 35 and all(c.isalnum() or c == "_" for c in tag):
            try:
                return Locale.parse(tag)
            except (ValueError, TypeError, UnknownLocaleError):
                pass
    return Locale.parse(DEFAULT_LANGUAGE)


def resolve_timezone(name: str | None) -> tuple[str, tzinfo]:
    """(IANA name, tzinfo) for a zone name; ("UTC", UTC) when missing or unknown."""
    if name and isinstance(name, str):
        name = name.strip()
        try:
            return name, ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
            pass
    return "UTC", UTC


def localize(moment: datetime, tz: tzinfo) -> datetime:
    """``moment`` (aware; naive means UTC) as wall time in ``tz``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz)


def format_long_date(day: date, locale: Locale) -> str:
    """Full date in the locale: "dinsdag 15 december 2026", "Tuesday, December 15, 2026"."""
    return format_date(day, format="full", locale=locale).translate(_ODD_SPACES)


def format_short_time(moment: datetime, locale: Locale) -> str:
    """Short wall-clock time of an already localized datetime: "14:00", "2:00 PM"."""
    return format_time(moment, format="short", tzinfo=moment.tzinfo, locale=locale).translate(
        _ODD_SPACES
    )


def _labels(locale: Locale) -> dict[str, str]:
    return _LABELS.get(locale.language, _LABELS[DEFAULT_LANGUAGE])


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def interview_details(ictx: InterviewCtx, language: str | None, tz: str | None) -> str:
    """The "copy details" block, in the candidate's language and time zone.

    Example (nl, Europe/Amsterdam)::

        Gesprek Backend Engineer
        Datum: dinsdag 15 december 2026
        Tijd: 14:00 – 15:00 (Europe/Amsterdam)
        Locatie: Keizersgracht 1, Amsterdam
        Videolink: https://meet.example/abc
        Interviewers: Ada Admin, Bo Berg

    Lines without a value (no location, no video link, no interviewers) are left out.
    """
    locale = resolve_locale(language)
    zone_name, zone = resolve_timezone(tz)
    labels = _labels(locale)
    start = localize(ictx.starts_at, zone)
    end = localize(ictx.ends_at, zone)
    end_text = format_short_time(end, locale)
    if end.date() != start.date():
        end_text = f"{format_long_date(end.date(), locale)} {end_text}"
    lines: list[str] = []
    title = _clean(ictx.title)
    if title:
        lines.append(title)
    lines.append(f"{labels['date']}: {format_long_date(start.date(), locale)}")
    lines.append(f"{labels['time']}: {format_short_time(start, locale)} – {end_text} ({zone_name})")
    location = _clean(ictx.location)
    if location:
        lines.append(f"{labels['location']}: {location}")
    video = _clean(ictx.video_link)
    if video:
        lines.append(f"{labels['video']}: {video}")
    people = [p for p in (_clean(n) for n in ictx.interviewers) if p]
    if people:
        lines.append(f"{labels['interviewers']}: {', '.join(people)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- catalogue

KINDS = ("INTERVIEW_INVITATION", "INTERVIEW_UPDATE", "INTERVIEW_CANCELLATION", "MESSAGE",
         "REJECTION")


@dataclass(frozen=True)
class PlaceholderSpec:
    name: str
    description: str
    example: str  # for a Dutch candidate in Europe/Amsterdam
    kinds: tuple[str, ...]


_EXAMPLE_INTERVIEW = InterviewCtx(
    title="Gesprek Backend Engineer",
    starts_at=datetime(2026, 12, 15, 13, 0, tzinfo=UTC),
    ends_at=datetime(2026, 12, 15, 14, 0, tzinfo=UTC),
    timezone="Europe/Amsterdam", location="Keizersgracht 1, Amsterdam",
    video_link="https://meet.example/abc", interviewers=["Ada Admin", "Bo Berg"])

_ALL, _REJ = KINDS, ("REJECTION",)
_IV = ("INTERVIEW_INVITATION", "INTERVIEW_UPDATE", "INTERVIEW_CANCELLATION")

PLACEHOLDERS: list[PlaceholderSpec] = [
    PlaceholderSpec("candidate.first_name", "The candidate's first name", "Nina", _ALL),
    PlaceholderSpec("candidate.last_name", "The candidate's last name", "de Vries", _ALL),
    PlaceholderSpec("candidate.full_name", "The candidate's full name", "Nina de Vries", _ALL),
    PlaceholderSpec("candidate.email", "The candidate's e-mail address", "nina@example.org",
                    _ALL),
    PlaceholderSpec("position.title", "The title of the position applied for (when the "
                    "message concerns an application)", "Backend Engineer", _ALL),
    PlaceholderSpec("company.name", "The company's name (the subsidiary's, when the message "
                    "concerns a position of a subsidiary)", "Acme Recruiting", _ALL),
    PlaceholderSpec("sender.name", "The name of the employee sending the message",
                    "Ada Admin", _ALL),
    PlaceholderSpec("sender.email", "The e-mail address of the employee sending the message",
                    "ada@acme.example", _ALL),
    PlaceholderSpec("interview.title", "The interview's title", "Gesprek Backend Engineer",
                    _IV),
    PlaceholderSpec("interview.date", "The interview date, in the candidate's language and "
                    "time zone", "dinsdag 15 december 2026", _IV),
    PlaceholderSpec("interview.start_time", "Start time in the candidate's time zone",
                    "14:00", _IV),
    PlaceholderSpec("interview.end_time", "End time in the candidate's time zone", "15:00",
                    _IV),
    PlaceholderSpec("interview.timezone", "The candidate's time zone (IANA name)",
                    "Europe/Amsterdam", _IV),
    PlaceholderSpec("interview.location", "Where the interview takes place",
                    "Keizersgracht 1, Amsterdam", _IV),
    PlaceholderSpec("interview.video_link", "The video call link", "https://meet.example/abc",
                    _IV),
    PlaceholderSpec("interview.interviewers", "The interviewers' names", "Ada Admin, Bo Berg",
                    _IV),
    PlaceholderSpec("interview.details", 'The whole "copy details" block: title, date, time, '
                    "location, video link and interviewers",
                    interview_details(_EXAMPLE_INTERVIEW, "nl", "Europe/Amsterdam"), _IV),
    PlaceholderSpec("rejection.reason", "The rejection reason", "Position filled", _REJ),
]


def placeholders_for(kind: str) -> list[PlaceholderSpec]:
    """The placeholders a template of ``kind`` may use (one of ``KINDS``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown template kind {kind!r}; expected one of {', '.join(KINDS)}")
    return [p for p in PLACEHOLDERS if kind in p.kinds]


# --------------------------------------------------------------------------- render context


@dataclass(frozen=True)
class CandidateCtx:
    first_name: str | None
    last_name: str | None
    full_name: str | None
    email: str | None
    language: str | None = "en"
    timezone: str | None = "UTC"


@dataclass(frozen=True)
class PositionCtx:
    title: str | None


@dataclass(frozen=True)
class CompanyCtx:
    name: str | None


@dataclass(frozen=True)
class SenderCtx:
    name: str | None
    email: str | None


@dataclass(frozen=True)
class RejectionCtx:
    reason: str | None


@dataclass(frozen=True)
class RenderContext:
    candidate: CandidateCtx
    company: CompanyCtx
    sender: SenderCtx
    position: PositionCtx | None = None
    interview: InterviewCtx | None = None
    rejection: RejectionCtx | None = None


# --------------------------------------------------------------------------- plain text → HTML

_URL = re.compile(r"https?://[^\s<>\"\x00-\x1f\x7f]+", re.IGNORECASE)
_TRAILING = ".,;:!?'*_"


def _link(url: str) -> tuple[str, str]:
    """Split a matched URL into (url, trailing text that is punctuation, not URL)."""
    tail = ""
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        tail = url[-1] + tail
        url = url[:-1]
    return url, tail


def _line_html(line: str) -> str:
    parts: list[str] = []
    pos = 0
    for match in _URL.finditer(line):
        url, tail = _link(match.group(0))
        if len(url) <= len("https://"):
            continue
        parts.append(html.escape(line[pos:match.start()], quote=False))
        safe = html.escape(url, quote=True)
        parts.append(f'<a href="{safe}" rel="noopener noreferrer">{safe}</a>')
        parts.append(html.escape(tail, quote=False))
        pos = match.end()
    parts.append(html.escape(line[pos:], quote=False))
    return "".join(parts)


def text_to_html(text: str) -> str:
    """The HTML alternative of a plain-text body: everything escaped (the text is never
    trusted as HTML), blank lines make paragraphs, line breaks stay, http(s) links clickable."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text = CONTROL_CHARS.sub("", text)
    paragraphs = [p for p in re.split(r"\n(?:[ \t]*\n)+", text.strip("\n")) if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(_line_html(line.rstrip()) for line in p.split("\n")) + "</p>"
        for p in paragraphs)
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"</head>\n<body>\n{body}\n</body>\n</html>\n")


def with_signature(body: str, signature: str | None) -> str:
    """``body`` + the RFC 3676 signature separator ("-- ") + ``signature`` (if any)."""
    if signature is None:
        return body
    signature = signature.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if signature.startswith("-- \n"):
        signature = signature[4:].strip("\n")
    if not signature.strip():
        return body
    return body.rstrip() + "\n\n-- \n" + signature

