"""What text a user may hand us: one rule for every text input, whoever calls.

Text reaches columns, mail headers, calendar lines and file names. Some characters make
sense in none of them and break them (a NUL is refused by PostgreSQL, a lone surrogate
cannot be encoded as UTF-8); others make sense only in free text (line breaks, and the
bidi embedding, override and isolate controls that RTL writing may use but that spoof
names, addresses and file names). And every column has a length. So a text input is
refused with INVALID_INPUT for a character it cannot hold and TOO_LONG past its length,
naming the field, before anything is looked up or written.

``TextRule`` says what one input may hold; ``text_errors`` checks a value against it.
The GraphQL layer applies these to every argument (schema/input_guard.py), and services
that take text from elsewhere call ``text_errors`` themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ErrorCode, FieldError, InputError

# C0 controls but TAB, LF, CR; DEL; C1 controls. Always refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Lone surrogates (a valid str never holds a surrogate pair): not encodable as UTF-8.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")
# LRE RLE PDF LRO RLO, LRI RLI FSI PDI (LRM/RLM/ALM marks stay allowed).
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")

TOO_LONG = ErrorCode.TOO_LONG
INVALID_INPUT = ErrorCode.INVALID_INPUT


@dataclass(frozen=True)
class TextRule:
    """What one text input may hold."""

    max_length: int
    # Free text (bodies, notes, signatures) may hold line breaks, tabs and bidi controls.
    multiline: bool = False


# The kinds of text inputs; lengths are those of the columns they end in.
LINE = TextRule(300)
NAME = TextRule(200)
ADDRESS = TextRule(320)
LANGUAGE = TextRule(35)
TIMEZONE = TextRule(64)
LOCATION = TextRule(500)
URL = TextRule(2000)
HOSTNAME = TextRule(255)
SECRET = TextRule(1000)
KEY = TextRule(200)  # idempotency keys, cursors, search terms
IDENTIFIER = TextRule(200)  # GraphQL IDs (base64 of a type and a UUID: ~60 characters)
SUBJECT = TextRule(998)  # one header line (RFC 5322)
NOTE = TextRule(10_000, multiline=True)
BODY = TextRule(1_000_000, multiline=True)
# An input nobody classified yet: free text, bounded.
DEFAULT = TextRule(100_000, multiline=True)


def _label(path: tuple[str, ...]) -> str:
    names = [p for p in path if not p.isdigit()]
    return names[-1] if names else "the text"


def text_errors(value: str, rule: TextRule, path: tuple[str, ...]) -> list[FieldError]:
    """Why ``value`` cannot be taken for the input at ``path`` (empty when it can)."""
    field = _label(path)
    if len(value) > rule.max_length:
        return [FieldError(TOO_LONG, f"{field} is longer than {rule.max_length} characters "
                                     f"({len(value)}).", path)]
    if "\x00" in value:
        return [FieldError(INVALID_INPUT, f"{field} contains a NUL character.", path)]
    if _SURROGATE.search(value):
        return [FieldError(INVALID_INPUT, f"{field} contains a lone UTF-16 surrogate "
                                          "(not a character).", path)]
    if _CONTROL.search(value):
        return [FieldError(INVALID_INPUT, f"{field} contains a control character.", path)]
    if not rule.multiline:
        if _LINE_BREAK.search(value):
            return [FieldError(INVALID_INPUT, f"{field} must be one line.", path)]
        if "\t" in value:
            return [FieldError(INVALID_INPUT, f"{field} contains a tab.", path)]
        if _BIDI_CONTROL.search(value):
            return [FieldError(INVALID_INPUT, f"{field} contains a bidirectional override "
                                              "or isolate control.", path)]
    return []


def check_text(value: str | None, rule: TextRule, *path: str) -> None:
    """Raise InputError when ``value`` cannot be taken (None passes)."""
    if value is None:
        return
    errors = text_errors(value, rule, tuple(path))
    if errors:
        raise InputError(errors)
