"""Tolerant, bounded iCalendar content-line parser (RFC 5545 §3.1) for inbound iMIP.

Real client output breaks strict parsers (the ``icalendar`` library included): folds in
the middle of parameter values or addresses, folds followed by two spaces, lines longer
than 75 octets, unfolded raw newlines, quoted-printable soft breaks (vCalendar 1.0),
unquoted ``SENT-BY=mailto:...`` parameters, duplicate properties, unterminated
``BEGIN`` blocks.  This module only builds a light component tree of raw content lines;
interpretation lives in :mod:`core.mail.itip`.  Pure functions, no I/O.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field

MAX_TEXT_CHARS = 2_000_000  # calendar text examined per part
MAX_PARAMS = 64  # parameters kept per property
MAX_NESTING = 16  # component nesting kept (VCALENDAR > VEVENT > VALARM is 3)

_NAME_RE = re.compile(r"\s*(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9_-]+)\s*")
_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_-]*)\s*(?:=\s*((?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*))?')
_URI_REST_RE = re.compile(r':[^";:,]*')
_PROPERTY_START_RE = re.compile(r"(?:[A-Za-z0-9-]+\.)?[A-Za-z0-9_-]+\s*[;:]")
_PARAM_VALUE_RE = re.compile(r'"([^"]*)"|([^",]*)')
_QP_PARAM_RE = re.compile(r"[A-Za-z-]=3D")
_TEXT_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_TEXT_ESCAPES = {"n": "\n", "N": "\n", ",": ",", ";": ";", ":": ":", "\\": "\\"}


@dataclass
class ContentLine:
    """One unfolded property: upper-case name, upper-case parameter names."""

    name: str
    params: dict[str, list[str]]
    value: str

    def param(self, key: str) -> str | None:
        """First value of parameter ``key`` (case-insensitive), or None."""
        values = self.params.get(key.upper())
        return values[0] if values else None


@dataclass
class Component:
    name: str
    lines: list[ContentLine] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def first(self, name: str) -> ContentLine | None:
        for line in self.lines:
            if line.name == name:
                return line
        return None

    def all(self, name: str) -> list[ContentLine]:
        return [line for line in self.lines if line.name == name]

    def value(self, name: str) -> str | None:
        line = self.first(name)
        return line.value.strip() if line is not None else None

    def sub(self, name: str) -> list[Component]:
        return [c for c in self.children if c.name == name]


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: BOM/UTF-16 sniffing, then UTF-8, the declared charset, cp1252."""
    data = data[: MAX_TEXT_CHARS * 2]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    head = data[:200]
    if len(head) > 16 and head.count(0) > len(head) // 3:  # UTF-16 without BOM
        encoding = "utf-16-le" if head[1] == 0 else "utf-16-be"
        return data.decode(encoding, errors="replace")
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    candidates = ["utf-8"]
    if charset:
        candidates.append(charset.strip().strip("\"'"))
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("cp1252", errors="replace")


def unfold(text: str) -> list[str]:
    """Logical content lines from raw calendar text.

    Handles CRLF/LF/CR, a fold marker of one space or tab (a second space is content:
    ``Inbox\\r\\n  Apptest`` is ``Inbox Apptest``), vCalendar 1.0 quoted-printable soft
    breaks, and stray physical lines that cannot start a property (raw newlines inside
    a value), which are appended to the previous line.
    """
    out: list[str] = []
    pieces: list[str] = []  # the logical line being built
    is_qp = False  # vCalendar 1.0 ENCODING=QUOTED-PRINTABLE property
    for raw in text[:MAX_TEXT_CHARS].splitlines():
        if not raw.strip():
            continue
        if pieces and raw[0] in " \t":
            pieces.append(raw[1:])
        elif pieces and is_qp and pieces[-1].endswith("="):
            pieces[-1] = pieces[-1][:-1]
            pieces.append(raw)
        elif pieces and not _PROPERTY_START_RE.match(raw):
            pieces.append("\n" + raw)
        else:
            if pieces:
                out.append("".join(pieces))
            pieces = [raw]
            is_qp = "QUOTED-PRINTABLE" in raw.split(":", 1)[0].upper()
    if pieces:
        out.append("".join(pieces))
    return out


def parse_line(line: str) -> ContentLine | None:
    """Split ``NAME;P=V;P2="a;b:c":value``; None when there is no property name."""
    match = _NAME_RE.match(line)
    if match is None:
        return None
    name = match.group(1).upper()
    pos = match.end()
    params: dict[str, list[str]] = {}
    while pos < len(line) and line[pos] == ";" and len(params) < MAX_PARAMS:
        pm = _PARAM_RE.match(line, pos)
        if pm is None:  # pragma: no cover - the pattern always matches a ';'
            break
        raw_value = pm.group(2) or ""
        end = pm.end()
        # Unquoted URI parameter (SENT-BY=mailto:x@y): keep the scheme's colon.
        if end < len(line) and line[end] == ":" and raw_value.lower().endswith("mailto"):
            more = _URI_REST_RE.match(line, end)
            if more is not None:
                raw_value += more.group(0)
                end = more.end()
        if pm.group(1):
            params.setdefault(pm.group(1).upper(), []).extend(_split_param_values(raw_value))
        pos = end if end > pos else pos + 1
        if pos < len(line) and line[pos] not in ";:":
            break  # broken quoting: the value starts after the next colon
    if pos < len(line) and line[pos] == ":":
        return ContentLine(name, params, line[pos + 1 :])
    colon = line.find(":", pos)
    return ContentLine(name, params, line[colon + 1 :] if colon >= 0 else "")


def _split_param_values(raw: str) -> list[str]:
    values: list[str] = []
    for m in _PARAM_VALUE_RE.finditer(raw):
        if m.start() > 0 and raw[m.start() - 1] != ",":
            continue
        values.append(_caret_decode(m.group(1) if m.group(1) is not None else m.group(2)))
    return values or [""]


def _caret_decode(value: str) -> str:
    """RFC 6868 parameter value encoding (^n, ^', ^^)."""
    if "^" not in value:
        return value
    return re.sub(r"\^([n'^])", lambda m: {"n": "\n", "'": '"', "^": "^"}[m.group(1)], value)


def parse_components(text: str) -> list[Component]:
    """Top-level VCALENDAR components; unterminated blocks are kept as they are.

    A component found outside any VCALENDAR (a bare VEVENT) is wrapped in a synthetic
    VCALENDAR without METHOD; properties outside any component are ignored.
    """
    roots: list[Component] = []
    stack: list[Component] = []
    skipped = 0  # open components nested deeper than MAX_NESTING
    for raw in unfold(text):
        line = parse_line(raw)
        if line is None:
            continue
        if line.name == "BEGIN":
            comp = Component(line.value.strip().upper())
            if comp.name == "VCALENDAR":  # also recovers from a missing END:VCALENDAR
                stack, skipped = [comp], 0
                roots.append(comp)
            elif skipped or len(stack) >= MAX_NESTING:
                skipped += 1
            else:
                if not stack:
                    stack.append(Component("VCALENDAR"))
                    roots.append(stack[0])
                stack[-1].children.append(comp)
                stack.append(comp)
        elif line.name == "END":
            if skipped:
                skipped -= 1
                continue
            names = [c.name for c in stack]
            name = line.value.strip().upper()
            if name in names:
                del stack[len(names) - 1 - names[::-1].index(name) :]
        elif stack and not skipped:
            stack[-1].lines.append(line)
    return roots


def unescape_text(value: str) -> str:
    """RFC 5545 TEXT unescaping: ``\\,`` ``\\;`` ``\\n`` ``\\N`` ``\\\\`` (and Outlook's ``\\:``)."""
    return _TEXT_ESCAPE_RE.sub(lambda m: _TEXT_ESCAPES.get(m.group(1), m.group(0)), value)


def clean_comment(value: str | None, *, html_escaped: bool = False) -> str | None:
    """Unescaped, stripped comment text; None when empty."""
    if value is None:
        return None
    text = unescape_text(value)
    if html_escaped:
        text = html.unescape(text)
    text = text.replace("\r\n", "\n").strip()
    return text or None


def looks_transfer_encoded(lines: list[str]) -> bool:
    """True for calendar text that is still quoted-printable encoded (``PARTSTAT=3DACCEPTED``).

    Such data was decoded only partially somewhere upstream; its structure (and so its
    METHOD) cannot be trusted.  Evidence must be repeated and dominate the ``=`` signs
    of the property-name/parameter sections, so a single ``CN=3D Systems`` passes.
    """
    encoded = plain = 0
    for line in lines:
        head = line.split(":", 1)[0]
        if line[:6].upper() in ("RRULE:", "EXRULE") or line[:5].upper() == "RDATE":
            head = line
        hits = len(_QP_PARAM_RE.findall(head))
        encoded += hits
        plain += head.count("=") - hits
    return encoded >= 2 and encoded >= plain
