"""Template rendering: placeholder catalogue, localization, missing values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from core.mail.render import (
    PLACEHOLDERS,
    CandidateCtx,
    RejectionCtx,
    TemplateError,
    interview_details,
    missing_placeholders,
    placeholders_for,
    render,
    used_placeholders,
)
from tests.support.render_context import INTERVIEW, NINA, ctx

DOC_NAMES = [
    "candidate.first_name", "candidate.last_name", "candidate.full_name", "candidate.email",
    "position.title", "company.name", "sender.name", "sender.email",
    "interview.title", "interview.date", "interview.start_time", "interview.end_time",
    "interview.timezone", "interview.location", "interview.video_link",
    "interview.interviewers", "interview.details", "rejection.reason",
]

JOHN = CandidateCtx("John", "Smith", "John Smith", "john@example.com", "en", "America/New_York")

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
