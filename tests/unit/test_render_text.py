"""Template rendering's text helpers: plain text to HTML, the signature, and the fast paths
(text-only templates joined without Jinja, one-line values) agreeing with the slow ones."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.mail.render import text_to_html, with_signature
from tests.support.render_context import NINA, ctx


def test_text_to_html_escapes_and_links() -> None:
    text = ("Hi <b>Nina</b> & co,\r\n\r\nJoin: https://meet.example/abc?x=1&y=\"2\".\n"
            "Not a link: javascript:alert(1) or (see https://ex.example/a_(b))\n\n-- \nAda")
    out = text_to_html(text)
    assert out.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in out
    assert "<p>Hi &lt;b&gt;Nina&lt;/b&gt; &amp; co,</p>" in out
    assert ('<a href="https://meet.example/abc?x=1&amp;y=&quot;2&quot;" '
            'rel="noopener noreferrer">') not in out  # the quote ends the URL
    assert '<a href="https://meet.example/abc?x=1&amp;y=" rel="noopener noreferrer">' in out
    assert '<a href="https://ex.example/a_(b)" rel="noopener noreferrer">' in out
    assert "javascript:alert(1)" in out and 'href="javascript' not in out
    assert "<br>\n" in out and "<p>--<br>\nAda</p>" in out
    assert "<script" not in text_to_html("<script>alert(1)</script>")
    assert "<p>a</p>\n<p>b</p>\n<p>c</p>" in text_to_html("a\n\n\n\nb\n  \nc\n")


def test_with_signature() -> None:
    assert with_signature("Hello\n\n", "Ada Admin\nAcme") == "Hello\n\n-- \nAda Admin\nAcme"
    assert with_signature("Hello", None) == "Hello"
    assert with_signature("Hello", "  ") == "Hello"
    assert with_signature("Hello", "-- \nAda\r\n") == "Hello\n\n-- \nAda"


@pytest.mark.parametrize("body", [
    "Hi {{ candidate.first_name }},\n\nsee you.\n",
    "{{candidate.first_name}}{{ candidate.last_name }}",
    "  lead {{- candidate.first_name -}}  trail \n\n",
    "{% raw %}{{ not.a.placeholder }}{% endraw %} {{ company.name }}",
    "{# comment #}Dear {{ candidate.full_name }}\r\nbye\r\n",
    "{{ candidate.email }} and {{ position.title }} and {{ interview.details }}",
    "no placeholders at all\n",
    "",
    "{{ candidate.first_name | upper }} {% if position.title %}x{% endif %}",
    "{{ position.title | default('a job') }}",
])
@pytest.mark.parametrize("context", ["full", "no_position", "no_email"])
def test_text_only_templates_render_as_jinja_renders_them(body: str, context: str) -> None:
    from core.mail.template_check import compile_template
    from core.mail.template_fill import fill
    from core.mail.template_values import placeholder_values

    c = {"full": ctx(), "no_position": ctx(position=None),
         "no_email": ctx(candidate=replace(NINA, email=None))}[context]
    compiled = compile_template(body.replace("\r\n", "\n"), "body")
    values = placeholder_values(c)
    fast_sink: list[str] = []
    fast = fill(compiled, values, fast_sink)
    slow_sink: list[str] = []
    jinja = fill(replace(compiled, segments=None), values, slow_sink)
    assert (fast, fast_sink) == (jinja, slow_sink)
    if "|" not in body and "{%" not in body.replace("{% raw %}", "").replace("{% endraw %}", ""):
        assert compiled.segments is not None  # the plain ones take the join


def test_one_line_gives_the_same_as_the_full_clean_up_for_any_text():
    """The fast path for values that already are one line agrees with folding control
    characters and whitespace runs, on every kind of text a candidate record can hold."""
    import random

    from core.mail.details import CONTROL_CHARS
    from core.mail.template_values import one_line

    def slow(value: str) -> str | None:
        return " ".join(CONTROL_CHARS.sub(" ", value).split()) or None

    alphabet = ["a", "Z", "é", "ß", "李", " ", "  ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f",
                "\x85", "\x9f", "\u00a0", "\u2028", "\u200b", "\u3000", "\ufeff", "-", "'"]
    rng = random.Random(7)
    samples = ["", " ", "Nina de Vries", " Nina", "Nina ", "Ni  na", "Ni\u00a0na", "Ni\x85na"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
                for _ in range(5000)]
    for value in samples:
        assert one_line(value) == slow(value), repr(value)
    assert one_line(None) is None
