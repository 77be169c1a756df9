"""Template rendering's refusals: everything outside the placeholder catalogue (sandboxing),
syntax errors with their line and column, kind restrictions, subject rules, and the
constructs that are allowed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.mail.render import SenderCtx, TemplateError, render, used_placeholders, validate_template
from tests.support.render_context import NINA, ctx


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
