"""Tolerant, bounded iCalendar content-line parser (RFC 5545 §3.1) for inbound iMIP.

Real client output breaks strict parsers (the ``icalendar`` library included): folds in
the middle of parameter values or addresses, folds followed by two spaces, lines longer
than 75 octets, unfolded raw newlines, quoted-printable soft breaks (vCalendar 1.0),
unquoted ``SENT-BY=mailto:...`` parameters, duplicate properties, unterminated
``BEGIN`` blocks; and transfer encodings that are broken themselves (quoted-printable
with literal ``=``, base64 without padding, undeclared charsets).  This module only
decodes and builds a light component tree of raw content lines; interpretation lives
in :mod:`core.mail.itip`.  Pure functions, no I/O.
"""

from __future__ import annotations

import binascii
import codecs
import html
import re
from collections.abc import Container
from dataclasses import dataclass, field

MAX_TEXT_CHARS = 2_000_000  # calendar text examined per part
MAX_PARAMS = 64  # parameters kept per property
MAX_NESTING = 16  # component nesting kept (VCALENDAR > VEVENT > VALARM is 3)
MAX_COMPONENTS = 5_000  # BEGIN blocks per calendar text
MAX_LINES_PER_COMPONENT = 10_000

_NOT_CHARSETS = {"punycode", "idna", "unicode-escape", "raw-unicode-escape", "utf-7"}
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_NAME_RE = re.compile(r"\s*(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9_-]+)\s*")
_PARAM_RE = re.compile(
    r';\s*([A-Za-z0-9_-]*)\s*(?:=\s*((?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*))?'
)
_URI_REST_RE = re.compile(r':[^";:,]*')
_PROPERTY_START_RE = re.compile(r"(?:[A-Za-z0-9-]+\.)?[A-Za-z0-9_-]+\s*[;:]")
_PARAM_VALUE_RE = re.compile(r'"([^"]*)"|([^",]*)')
_QP_PARAM_RE = re.compile(r"[A-Za-z-]=3D")
_QP_BROKEN_RE = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*\r?\n|[ \t]*$)")
_QP_SAFE_RE = re.compile(
    rb"=[ \t]*\r?\n|=3[Dd]|=20|=09|=0[DdAa]|(?:=[C-Fc-f][0-9A-Fa-f](?:=[89ABab][0-9A-Fa-f])+)"
)
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
    try:  # not final: a multi-byte character cut by the size cap is no charset evidence
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        pass
    try:
        codec = codecs.lookup(charset.strip().strip("\"'")) if charset else None
        if codec is not None and codec.name not in _NOT_CHARSETS:
            return data.decode(codec.name)
    except (LookupError, UnicodeDecodeError, ValueError):
        pass
    return data.decode("cp1252", errors="replace")


def decode_base64(raw: bytes) -> bytes:
    """Lenient base64: stray characters ignored, padding repaired, concatenated chunks kept."""
    out = []
    for chunk in re.split(rb"=+", re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)):
        chunk = chunk[: len(chunk) - (len(chunk) % 4 == 1)]
        if chunk:
            out.append(binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4)))
    return b"".join(out)


def decode_quoted_printable(raw: bytes, charset: str | None) -> bytes:
    """Quoted-printable; for broken QP (literal ``=`` left unencoded, ``CN=Receiver``)
    only unambiguous sequences are decoded so ``PARTSTAT=ACCEPTED`` survives."""
    if not _QP_BROKEN_RE.search(raw):
        data = binascii.a2b_qp(raw)
        if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8", "us-ascii"):
            return data
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            pass

    def one(match: re.Match[bytes]) -> bytes:
        seq = match.group(0)
        if seq.rstrip(b" \t\r\n") == b"=":
            return b""
        decoded = binascii.a2b_qp(seq)
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            return seq
        return decoded

    return _QP_SAFE_RE.sub(one, raw)


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
    for raw in _NEWLINE_RE.split(text[:MAX_TEXT_CHARS]):  # not splitlines(): U+2028 is text
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
        if pos < len(line) and line[pos] not in ";:":  # broken quoting: resynchronise
            semi, colon = line.find(";", pos), line.find(":", pos)
            if 0 <= semi and (colon < 0 or semi < colon):
                pos = semi
                continue
            break  # the value starts after the next colon
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


def parse_components(lines: list[str], keep: Container[str] | None = None) -> list[Component]:
    """Top-level VCALENDAR components from :func:`unfold` output; unterminated blocks are kept.

    Only properties named in ``keep`` are stored (all when None).  A component found
    outside any VCALENDAR (a bare VEVENT) is wrapped in a synthetic VCALENDAR without
    METHOD; properties outside any component are ignored.  Component count, nesting and
    properties per component are capped.
    """
    roots: list[Component] = []
    stack: list[Component] = []
    skipped = 0  # open components beyond MAX_NESTING / MAX_COMPONENTS
    created = 0
    for raw in lines:
        match = _NAME_RE.match(raw)
        if match is None:
            continue
        name = match.group(1).upper()
        if name in ("BEGIN", "END"):
            value = raw.partition(":")[2].strip().split("\n", 1)[0].strip().upper()
        elif not stack or skipped or (keep is not None and name not in keep):
            continue
        elif len(stack[-1].lines) < MAX_LINES_PER_COMPONENT:
            parsed = parse_line(raw)
            if parsed is not None:
                stack[-1].lines.append(parsed)
            continue
        else:
            continue
        if name == "BEGIN":
            created += 1
            if skipped or created > MAX_COMPONENTS or (stack and len(stack) >= MAX_NESTING):
                skipped += 1
            elif value == "VCALENDAR":  # also recovers from a missing END:VCALENDAR
                stack = [Component(value)]
                roots.append(stack[0])
            else:
                if not stack:
                    stack.append(Component("VCALENDAR"))
                    roots.append(stack[0])
                comp = Component(value)
                stack[-1].children.append(comp)
                stack.append(comp)
        elif skipped:
            skipped -= 1
        else:
            names = [c.name for c in stack]
            if value in names:
                del stack[len(names) - 1 - names[::-1].index(value) :]
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
