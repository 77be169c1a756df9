"""Template rendering: placeholder catalogue, localization, sandboxing, missing values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from core.mail.render import (
    PLACEHOLDERS,
    CandidateCtx,
    CompanyCtx,
    InterviewCtx,
    PositionCtx,
    RejectionCtx,
    RenderContext,
    SenderCtx,
    TemplateError,
    interview_details,
    missing_placeholders,
    placeholders_for,
    render,
    text_to_html,
    used_placeholders,
    validate_template,
    with_signature,
)

DOC_NAMES = [
    "candidate.first_name", "candidate.last_name", "candidate.full_name", "candidate.email",
    "position.title", "company.name", "sender.name", "sender.email",
    "interview.title", "interview.date", "interview.start_time", "interview.end_time",
    "interview.timezone", "interview.location", "interview.video_link",
    "interview.interviewers", "interview.details", "rejection.reason",
]

INTERVIEW = InterviewCtx(
    title="Gesprek Backend Engineer",
    starts_at=datetime(2026, 12, 15, 13, 0, tzinfo=UTC),
    ends_at=datetime(2026, 12, 15, 14, 0, tzinfo=UTC),
    timezone="Europe/Amsterdam",
    location="Keizersgracht 1, Amsterdam",
    video_link="https://meet.example/abc",
    interviewers=["Ada Admin", "Bo Berg"],
)
NINA = CandidateCtx("Nina", "de Vries", "Nina de Vries", "nina@example.org", "nl",
                    "Europe/Amsterdam")
JOHN = CandidateCtx("John", "Smith", "John Smith", "john@example.com", "en", "America/New_York")


def ctx(candidate: CandidateCtx = NINA, **kw: object) -> RenderContext:
    base = RenderContext(candidate=candidate, company=CompanyCtx("Acme Recruiting"),
                         sender=SenderCtx("Ada Admin", "ada@acme.example"),
                         position=PositionCtx("Backend Engineer"), interview=INTERVIEW)
    return replace(base, **kw)  # type: ignore[arg-type]


INVITE_SUBJECT = "{{ position.title }}: {{ interview.date }}"
INVITE_BODY = ("Hi {{ candidate.first_name }},\n"
               "{{ position.title }} on {{ interview.date }} at {{ interview.start_time }}.\n"
               "Link: {{ interview.video_link }}\n")


# --------------------------------------------------------------------------- catalogue


def test_catalogue_names_match_the_contract() -> None:
    assert [p.name for p in PLACEHOLDERS] == DOC_NAMES
    for spec in PLACEHOLDERS:
        assert spec.description and spec.example


def test_placeholders_for_kind() -> None:
    general = DOC_NAMES[:8]
    interview = [n for n in DOC_NAMES if n.startswith("interview.")]
    assert [p.name for p in placeholders_for("MESSAGE")] == general
    assert [p.name for p in placeholders_for("REJECTION")] == [*general, "rejection.reason"]
    assert [p.name for p in placeholders_for("INTERVIEW_INVITATION")] == general + interview
    with pytest.raises(ValueError):
        placeholders_for("NEWSLETTER")


def test_catalogue_examples_are_the_documented_ones() -> None:
    examples = {p.name: p.example for p in PLACEHOLDERS}
    assert examples["interview.date"] == "dinsdag 15 december 2026"
    assert examples["interview.start_time"] == "14:00"
    assert examples["interview.end_time"] == "15:00"
    assert examples["interview.timezone"] == "Europe/Amsterdam"
    assert examples["interview.interviewers"] == "Ada Admin, Bo Berg"
    assert examples["rejection.reason"] == "Position filled"
    assert examples["interview.details"].startswith("Gesprek Backend Engineer\nDatum: dinsdag")


# --------------------------------------------------------------------------- localization


def test_dutch_and_english_candidates_get_their_language_and_zone() -> None:
    nl = render(INVITE_SUBJECT, INVITE_BODY, ctx(NINA))
    en = render(INVITE_SUBJECT, INVITE_BODY, ctx(JOHN))
    assert nl.subject == "Backend Engineer: dinsdag 15 december 2026"
    assert nl.body == ("Hi Nina,\nBackend Engineer on dinsdag 15 december 2026 at 14:00.\n"
                       "Link: https://meet.example/abc\n")
    assert en.subject == "Backend Engineer: Tuesday, December 15, 2026"
    assert en.body == ("Hi John,\nBackend Engineer on Tuesday, December 15, 2026 at 8:00 AM.\n"
                       "Link: https://meet.example/abc\n")


def test_times_follow_the_candidate_zone_not_the_interview_zone() -> None:
    summer = replace(INTERVIEW, starts_at=datetime(2026, 7, 1, 13, tzinfo=UTC),
                     ends_at=datetime(2026, 7, 1, 14, 30, tzinfo=UTC), timezone="Asia/Tokyo")
    body = "{{ interview.start_time }}-{{ interview.end_time }} {{ interview.timezone }}"
    assert render("x", body, ctx(NINA, interview=summer)).body == "15:00-16:30 Europe/Amsterdam"
    india = replace(NINA, language="en-IN", timezone="Asia/Kolkata")
    assert render("x", body, ctx(india, interview=summer)).body == (
        "6:30 PM-8:00 PM Asia/Kolkata")


@pytest.mark.parametrize(("language", "tz", "expected"), [
    ("xx", "Europe/Amsterdam", "Tuesday, December 15, 2026 14:00"),
    ("", "Nowhere/City", "Tuesday, December 15, 2026 1:00 PM"),
    (None, None, "Tuesday, December 15, 2026 1:00 PM"),
    ("../../etc", "../../etc/passwd", "Tuesday, December 15, 2026 1:00 PM"),
    ("nl-NL", "Europe/Amsterdam", "dinsdag 15 december 2026 14:00"),
    ("de_DE", "Europe/Berlin", "Dienstag, 15. Dezember 2026 14:00"),
])
def test_unknown_language_or_zone_falls_back(language: str | None, tz: str | None,
                                             expected: str) -> None:
    candidate = replace(NINA, language=language, timezone=tz)
    out = render("x", "{{ interview.date }} {{ interview.start_time }}", ctx(candidate))
    # "xx" falls back to English words; the time format follows the fallback locale too
    if language == "xx":
        expected = "Tuesday, December 15, 2026 2:00 PM"
    assert out.body == expected


def test_interview_details_block_nl_en_de() -> None:
    assert interview_details(INTERVIEW, "nl", "Europe/Amsterdam") == (
        "Gesprek Backend Engineer\n"
        "Datum: dinsdag 15 december 2026\n"
        "Tijd: 14:00 – 15:00 (Europe/Amsterdam)\n"
        "Locatie: Keizersgracht 1, Amsterdam\n"
        "Videolink: https://meet.example/abc\n"
        "Interviewers: Ada Admin, Bo Berg")
    en = interview_details(INTERVIEW, "en", "America/New_York")
    assert "Date: Tuesday, December 15, 2026\n" in en
    assert "Time: 8:00 AM – 9:00 AM (America/New_York)\n" in en
    assert "Location: Keizersgracht 1, Amsterdam\nVideo link: https://meet.example/abc" in en
    de = interview_details(INTERVIEW, "de", "Europe/Berlin")
    assert "Datum: Dienstag, 15. Dezember 2026\nUhrzeit: 14:00 – 15:00 (Europe/Berlin)" in de
    assert interview_details(INTERVIEW, "zz", "Bad/Zone").startswith(
        "Gesprek Backend Engineer\nDate: Tuesday, December 15, 2026\n"
        "Time: 1:00 PM – 2:00 PM (UTC)")


def test_interview_details_leaves_out_empty_lines_and_shows_next_day_end() -> None:
    late = replace(INTERVIEW, location=None, interviewers=[],
                   starts_at=datetime(2026, 12, 15, 22, 30, tzinfo=UTC),
                   ends_at=datetime(2026, 12, 15, 23, 30, tzinfo=UTC))
    text = interview_details(late, "nl", "Europe/Amsterdam")
    assert "Locatie" not in text and "Interviewers" not in text
    assert "Tijd: 23:30 – woensdag 16 december 2026 00:30 (Europe/Amsterdam)" in text
    out = render("x", "{{ interview.details }}", ctx(interview=late))
    assert out.body == text


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("body", "code"), [
    ("{{ candidate.__class__ }}", "UNKNOWN_PLACEHOLDER"),
    ("{{ foo }}", "UNKNOWN_PLACEHOLDER"),
    ("{{ candidate }}", "UNKNOWN_PLACEHOLDER"),
    ("{{ candidate.nope }}", "UNKNOWN_PLACEHOLDER"),
    ("{{ candidate.first_name.upper }}", "UNKNOWN_PLACEHOLDER"),
    ("{{ ''.__class__.__mro__ }}", "UNSUPPORTED"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "UNSUPPORTED"),
    ("{% for x in range(10**9) %}x{% endfor %}", "UNSUPPORTED"),
    ("{{ 'a' * 1000000000 }}", "UNSUPPORTED"),
    ("{{ candidate.first_name() }}", "UNSUPPORTED"),
    ("{{ candidate['first_name'] }}", "UNSUPPORTED"),
    ("{{ candidate.first_name|attr('__class__') }}", "UNSUPPORTED"),
    ("{{ candidate.first_name|format('%s') }}", "UNSUPPORTED"),
    ("{{ candidate.first_name|upper(1) }}", "UNSUPPORTED"),
    ("{{ candidate.first_name|default }}", "UNSUPPORTED"),
    ("{{ candidate.first_name|default(candidate.email) }}", "UNSUPPORTED"),
    ("{% set x = 'y' %}{{ x }}", "UNSUPPORTED"),
    ("{% macro m() %}{% endmacro %}", "UNSUPPORTED"),
    ("{% include 'x.html' %}", "UNSUPPORTED"),
    ("{% if candidate.first_name is defined %}x{% endif %}", "UNSUPPORTED"),
    ("{{ 42 }}", "UNSUPPORTED"),
    ("{{ lipsum() }}", "UNSUPPORTED"),
    ("{{ cycler.__init__.__globals__ }}", "UNKNOWN_PLACEHOLDER"),
])
def test_everything_outside_the_catalogue_is_refused(body: str, code: str) -> None:
    errors = validate_template("Hello", body, "MESSAGE")
    assert errors and errors[0].code == code
    assert all(e.field == "body" and e.line == 1 for e in errors)
    with pytest.raises(TemplateError):
        render("Hello", body, ctx())


def test_unknown_placeholder_points_at_line_and_column() -> None:
    [error] = validate_template("Hi", "Hello,\n\nDear {{ candidate.nope }}", "MESSAGE")
    assert (error.line, error.column, error.field) == (3, 9, "body")
    assert "candidate.nope" in error.message
    assert error.placeholders == ("candidate.nope",)


def test_syntax_error_reports_the_line() -> None:
    [error] = validate_template("Hi", "Hello\n\n{{ candidate.first_name }\nBye", "MESSAGE")
    assert error.code == "SYNTAX" and error.line == 3 and error.field == "body"
    [error] = validate_template("Hi {% if %}", "Body", "MESSAGE")
    assert error.code == "SYNTAX" and error.field == "subject" and error.line == 1
    with pytest.raises(TemplateError) as raised:
        render("Hi", "{% endif %}", ctx())
    assert raised.value.code == "SYNTAX"
    with pytest.raises(TemplateError):
        used_placeholders("{{ x")


def test_for_loop_error_points_at_the_statement() -> None:
    [error] = validate_template("Hi", "a\n  {% for x in range(10**9) %}x{% endfor %}", "MESSAGE")
    assert (error.line, error.column) == (2, 3)
    assert "{% for %}" in error.message


def test_kind_restrictions() -> None:
    [error] = validate_template("Hi", "Op {{ interview.date }}", "MESSAGE")
    assert error.code == "NOT_ALLOWED_FOR_KIND" and error.placeholders == ("interview.date",)
    assert (error.line, error.column) == (1, 7)
    assert validate_template("{{ interview.title }}", "{{ interview.date }}",
                             "INTERVIEW_INVITATION") == []
    assert [e.field for e in validate_template("{{ rejection.reason }}", "x", "MESSAGE")] == [
        "subject"]
    assert validate_template("x", "{{ rejection.reason }}", "REJECTION") == []
    assert validate_template("x", "{{ interview.date }}", "REJECTION")[0].code == (
        "NOT_ALLOWED_FOR_KIND")
    with pytest.raises(ValueError):
        validate_template("x", "y", "SPAM")


def test_subject_rules() -> None:
    [error] = validate_template("Hello\n{{ candidate.first_name }}", "x", "MESSAGE")
    assert error.code == "MULTILINE_SUBJECT" and error.field == "subject"
    assert validate_template("  ", "x", "MESSAGE")[0].code == "EMPTY_SUBJECT"
    with pytest.raises(TemplateError):
        render("a\r\nb", "x", ctx())
    spaced = replace(NINA, first_name="Nina\r\nBcc: evil@example.org\tx")
    out = render("Hi {{ candidate.first_name }}  !", "{{ candidate.first_name }}", ctx(spaced))
    assert out.subject == "Hi Nina Bcc: evil@example.org x !"
    assert "\n" not in out.subject and "\r" not in out.subject
    with pytest.raises(TemplateError) as raised:
        render("{% if rejection.reason %}x{% endif %}", "y", ctx())
    assert raised.value.code == "EMPTY_SUBJECT"


def test_allowed_constructs() -> None:
    body = ("{{ candidate.first_name|upper }} {{ company.name|lower }} "
            "{{ candidate.last_name|title }} {{ interview.location|default('online') }} "
            "{{ sender.email|d('n/a', true) }} {{ '{{' }}x}}"
            "{% if interview.video_link and not interview.location %} V"
            "{% elif interview.location %} L{% else %} -{% endif %}")
    assert validate_template("s", body, "INTERVIEW_INVITATION") == []
    out = render("s", body, ctx(sender=SenderCtx("Ada Admin", None)))
    assert out.body == "NINA acme recruiting De Vries Keizersgracht 1, Amsterdam n/a {{x}} L"
    assert render("s", "a\r\nb\r\n", ctx()).body == "a\nb\n"
    assert render("s", "{# note #}{% raw %}{{ raw }}{% endraw %}", ctx()).body == "{{ raw }}"


def test_values_are_never_evaluated_as_templates() -> None:
    sneaky = replace(NINA, first_name="{{ 7*7 }}{% for x in range(9) %}")
    assert render("x", "{{ candidate.first_name }}", ctx(sneaky)).body == (
        "{{ 7*7 }}{% for x in range(9) %}")


# --------------------------------------------------------------------------- missing values


def test_missing_placeholders_without_interview_and_position() -> None:
    subject, body = INVITE_SUBJECT, INVITE_BODY + "{{ interview.details }}"
    no_interview = ctx(interview=None)
    assert missing_placeholders(subject, body, no_interview) == [
        "interview.date", "interview.start_time", "interview.video_link", "interview.details"]
    assert missing_placeholders(subject, body, ctx(position=None, interview=None)) == [
        "position.title", "interview.date", "interview.start_time", "interview.video_link",
        "interview.details"]
    assert missing_placeholders(subject, body, ctx()) == []
    with pytest.raises(TemplateError) as raised:
        render(subject, body, no_interview)
    assert raised.value.code == "MISSING_VALUE"
    assert raised.value.field == "subject"
    assert raised.value.placeholders == ("interview.date",)


def test_missing_email_blank_names_and_unknown_names() -> None:
    no_mail = replace(NINA, email=None, last_name="   ")
    body = "{{ candidate.email }} {{ candidate.last_name }} {{ candidate.full_name }} {{ x.y }}"
    assert missing_placeholders("s", body, ctx(no_mail)) == [
        "candidate.last_name", "candidate.email", "x.y"]
    with pytest.raises(TemplateError) as raised:
        render("s", "{{ candidate.email }}", ctx(no_mail))
    assert raised.value.placeholders == ("candidate.email",) and raised.value.line == 1
    no_full = replace(NINA, full_name=None)
    assert render("s", "{{ candidate.full_name }}", ctx(no_full)).body == "Nina de Vries"
    with pytest.raises(TemplateError):
        missing_placeholders("s", "{% for a in b %}{% endfor %}", ctx())


def test_conditionals_and_defaults_are_not_missing() -> None:
    online = replace(INTERVIEW, location=None)
    body = ("{% if interview.location %}At {{ interview.location }}{% endif %}"
            "{{ interview.location|default('online') }} {{ interview.location or 'video' }}")
    assert missing_placeholders("s", body, ctx(interview=online)) == []
    assert render("s", body, ctx(interview=online)).body == "online video"
    # a filter cannot hide a missing value behind an empty string
    assert missing_placeholders("s", "{{ interview.location|upper|default('x') }}",
                                ctx(interview=online)) == ["interview.location"]


def test_used_placeholders() -> None:
    assert used_placeholders(INVITE_BODY) == {"candidate.first_name", "position.title",
                                              "interview.date", "interview.start_time",
                                              "interview.video_link"}
    assert used_placeholders("{% if a.b %}{{ c|upper }}{% endif %}") == {"a.b", "c"}


def test_rejection_reason() -> None:
    out = render("Update", "Reden: {{ rejection.reason }}",
                 ctx(interview=None, rejection=RejectionCtx("Position filled")))
    assert out.body == "Reden: Position filled"


# --------------------------------------------------------------------------- text helpers


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
