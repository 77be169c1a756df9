"""Reading hostile mail safely: headers, bounded MIME walks, charsets, text from HTML."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from html.parser import HTMLParser

from core.services.inbound import safe_text

MAX_HEADER_CHARS = 8000  # of one raw header examined
MAX_PARTS = 300
MAX_DEPTH = 30
MAX_HTML_CHARS = 500_000


def fix_8bit(value: str) -> str:
    """Raw 8-bit bytes that the parser kept as surrogates: read them as UTF-8 (else Latin-1)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def header_text(msg: Message, name: str) -> str:
    """A header's decoded text ("" when absent or unreadable); encoded words resolved."""
    try:
        value = msg.get(name)
    except Exception:
        return ""
    if value is None:
        return ""
    try:
        text = str(value)[:MAX_HEADER_CHARS]
    except Exception:
        return ""
    text = fix_8bit(text)
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except Exception:
            pass
    return safe_text(text, MAX_HEADER_CHARS)


def one_line(value: str | None, limit: int) -> str:
    """Whitespace (folding, newlines) collapsed to single spaces, cut at limit."""
    return " ".join(safe_text(value or "", limit * 2).split())[:limit]


def iter_parts(msg: Message) -> Iterator[tuple[Message, bool]]:
    """Depth-first without recursion, bounded in parts and depth.

    Yields (part, inside an attached message) so bodies of forwarded or returned mail
    can be told from the mail's own.
    """
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth, nested = stack.pop()
        seen += 1
        yield part, nested
        try:
            children = part.get_payload() if part.is_multipart() else None
        except Exception:
            children = None
        if not isinstance(children, list) or depth >= MAX_DEPTH:
            continue
        inner = nested or part.get_content_type().startswith("message/")
        for child in reversed(children[:MAX_PARTS]):
            if isinstance(child, Message):
                stack.append((child, depth + 1, inner))


def _codec(charset: str | None) -> str | None:
    """A text codec for a declared charset; None when unknown or not a text encoding."""
    name = (charset or "").strip().strip("\"'").lower()
    if not name or len(name) > 40:
        return None
    aliases = {"ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "unicode-1-1-utf-7": "utf-7",
               "iso-8859-8-i": "iso-8859-8", "windows-874": "cp874", "x-user-defined": "latin-1"}
    name = aliases.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zlib ...
        return None
    return info.name


def part_bytes(part: Message) -> bytes:
    """The part's content with its transfer encoding undone (best effort)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    try:
        payload = part.get_payload()
    except Exception:
        return b""
    return str(payload).encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text in the declared charset; undeclared or unknown: UTF-8, else Windows-1252."""
    codec = _codec(charset)
    if codec is None:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")
    try:
        text = data.decode(codec, "replace")
    except Exception:  # a codec that fails on its own terms (utf-7 on garbage, ...)
        text = data.decode("utf-8", "replace")
    if codec == "utf-8" and text.count("\ufffd") > max(8, len(text) // 20):
        text = data.decode("cp1252", "replace")  # mislabelled 8-bit text, not junk
    return text


def part_text(part: Message, limit: int) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(part_bytes(part)[: limit * 4], charset)[:limit]


class _HtmlText(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table",
              "ul", "ol", "hr", "pre", "blockquote", "section", "article", "header", "footer"}
    _SKIP = {"script", "style", "head", "title", "template", "noscript"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self.current: list[str] = []
        self.depth = 0
        self.line_depth = 0
        self.skip = 0

    def _break(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.lines.append((self.line_depth, text))
        self.current = []
        self.line_depth = self.depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BLOCK:
            self._break()
            if tag == "blockquote":
                self.depth = min(self.depth + 1, 20)
                self.line_depth = self.depth

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(self.skip - 1, 0)
        elif tag in self._BLOCK:
            self._break()
            if tag == "blockquote":
                self.depth = max(self.depth - 1, 0)
                self.line_depth = self.depth

    def handle_data(self, data: str) -> None:
        if not self.skip:
            if not self.current:
                self.line_depth = self.depth
            self.current.append(data)

    def text(self) -> str:
        self._break()
        return "\n".join("> " * depth + line for depth, line in self.lines)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body; blockquotes become "> " lines (so quotes are found)."""
    parser = _HtmlText()
    try:
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    except Exception:
        return " ".join(re.sub(r"<[^>]{0,2000}>", " ", html[:MAX_HTML_CHARS]).split())
    return parser.text()
