"""core.text_input: one rule for every text input."""

from __future__ import annotations

import pytest

from core.errors import ErrorCode, InputError
from core.text_input import BODY, LINE, NAME, TextRule, check_text, text_errors


@pytest.mark.parametrize("value", ["a\x00b", "\x1b[0m", "a\x7fb", "a\x9bb",
                                   "x\ud800", "\udfffx", "\x08"])
def test_never_in_any_text(value: str) -> None:
    for rule in (LINE, BODY):
        [err] = text_errors(value, rule, ("input", "body"))
        assert err.code == ErrorCode.INVALID_INPUT and err.field == ("input", "body")


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\u2028b", "a\tb", "pay\u202etxt.exe",
                                   "\u2066x\u2069", "\u202ax\u202c"])
def test_only_in_free_text(value: str) -> None:
    assert text_errors(value, BODY, ("body",)) == []
    [err] = text_errors(value, LINE, ("input", "title"))
    assert err.code == ErrorCode.INVALID_INPUT and "title" in err.message


def test_length_names_the_field() -> None:
    [err] = text_errors("x" * 201, NAME, ("input", "cc", "3"))
    assert err.code == ErrorCode.TOO_LONG and err.field == ("input", "cc", "3")
    assert err.message.startswith("cc is longer than 200")
    assert text_errors("x" * 200, NAME, ("name",)) == []
    assert text_errors("é" * 5, TextRule(5), ("n",)) == []


def test_ordinary_text_passes() -> None:
    for value in ("Zoë O'Brien-Đặng", "مرحبا\u200f", "日本語", "😀 ok", ""):
        assert text_errors(value, LINE, ("x",)) == []
    check_text(None, LINE, "x")
    with pytest.raises(InputError) as exc:
        check_text("a\x00", LINE, "input", "location")
    assert exc.value.errors[0].field == ("input", "location")
