"""The starter set in templates/: every file parses, validates for its kind and renders for
a candidate with an interview in every starter language, with no placeholder left unfilled;
and the language choice of core.mail.languages."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import pytest

from core.mail import render as r
from core.mail.languages import normalize_language, pick_language
from core.models.enums import TemplateKind
from core.services.starter import (
    STARTER_LANGUAGES,
    starter_rejection_reasons,
    starter_text,
    starter_versions,
)

INTERVIEW = r.InterviewCtx(
    title="Gesprek Backend Engineer", starts_at=datetime(2026, 12, 15, 13, 0, tzinfo=UTC),
    ends_at=datetime(2026, 12, 15, 14, 0, tzinfo=UTC), timezone="Europe/Amsterdam",
    location="Keizersgracht 1, Amsterdam", video_link="https://meet.example/abc",
    interviewers=["Ada Admin", "Bo Berg"])


def _ctx(language: str, *, interview: bool = True, position: bool = True) -> r.RenderContext:
    return r.RenderContext(
        candidate=r.CandidateCtx("Nina", "de Vries", "Nina de Vries", "nina@example.org",
                                 language, "Europe/Amsterdam"),
        company=r.CompanyCtx("Acme Recruiting"), sender=r.SenderCtx("Ada Admin", "ada@acme.example"),
        position=r.PositionCtx("Backend Engineer") if position else None,
        interview=INTERVIEW if interview else None,
        rejection=r.RejectionCtx("Position filled"))


def test_files_are_in_the_package():
    root = resources.files("templates")
    for lang in STARTER_LANGUAGES:
        names = {p.name for p in (root / lang).iterdir()}
        assert names == {f"{k.value.lower()}.txt" for k in TemplateKind} | {"rejection_reasons.txt"}


@pytest.mark.parametrize("kind", list(TemplateKind))
@pytest.mark.parametrize("language", STARTER_LANGUAGES)
def test_every_starter_file_renders_without_missing_placeholder(kind, language):
    text = starter_text(kind, language)
    assert text.language == language and text.name.strip()
    assert r.validate_template(text.subject, text.body, kind.value) == []
    ctx = _ctx(language)
    assert r.missing_placeholders(text.subject, text.body, ctx) == []
    out = r.render(text.subject, text.body, ctx)
    assert "{{" not in out.subject + out.body and "{%" not in out.body
    assert "Nina" in out.body and "Ada Admin" in out.body and "Acme Recruiting" in out.body
    if kind in (TemplateKind.INTERVIEW_INVITATION, TemplateKind.INTERVIEW_UPDATE,
                TemplateKind.INTERVIEW_CANCELLATION):
        # Date and time in the candidate's language and zone.
        date = {"en": "Tuesday, December 15, 2026", "nl": "dinsdag 15 december 2026",
                "de": "Dienstag, 15. Dezember 2026"}[language]
        assert date in out.body and ("2:00 PM" if language == "en" else "14:00") in out.body


@pytest.mark.parametrize("language", STARTER_LANGUAGES)
def test_message_starter_needs_no_application(language):
    text = starter_text(TemplateKind.MESSAGE, language)
    ctx = _ctx(language, interview=False, position=False)
    assert r.missing_placeholders(text.subject, text.body, ctx) == []
    assert "Backend Engineer" not in r.render(text.subject, text.body, ctx).body


def test_formal_address():
    for kind in TemplateKind:
        nl = starter_text(kind, "nl").body.lower().split()
        de = starter_text(kind, "de").body.split()
        assert "u" in nl or "uw" in nl
        assert not {"je", "jij", "jouw"} & set(nl), kind
        assert "Sie" in de or "Ihre" in de or "Ihr" in de
        assert not {"du", "dich", "dir", "dein", "deine"} & {w.strip(",.") for w in de}, kind


def test_versions_and_reasons():
    assert [v.language for v in starter_versions(TemplateKind.REJECTION, "de")] == ["de", "en", "nl"]
    for lang in STARTER_LANGUAGES:
        reasons = starter_rejection_reasons(lang)
        assert len(reasons) >= 5 and len(set(reasons)) == len(reasons)
    assert starter_rejection_reasons("nl")[0] == "Vacature vervuld"


def test_normalize_language():
    assert normalize_language("NL_be") == "nl-BE"
    assert normalize_language(" de ") == "de"
    assert normalize_language("zh-hant-tw") == "zh-Hant-TW"
    assert normalize_language("es-419") == "es-419"
    for bad in ("", "n", "nl-", "nl BE", "x" * 40, "12", None, "nl-\n"):
        assert normalize_language(bad) is None, bad


def test_pick_language():
    own_en_nl = ["en", "nl"]
    assert pick_language(own_en_nl, "nl") == 1
    assert pick_language(own_en_nl, "nl-BE") == 1
    assert pick_language(own_en_nl, "NL_be") == 1
    assert pick_language(own_en_nl, "en") == 0
    assert pick_language(own_en_nl, "de") == 0  # the template's own language
    assert pick_language(own_en_nl, None) == 0 and pick_language(own_en_nl, "???") == 0
    # Exact tag before primary subtag; another region of the language before the own one.
    assert pick_language(["en", "nl", "nl-BE"], "nl-BE") == 2
    assert pick_language(["en", "nl", "nl-BE"], "nl-NL") == 1
    assert pick_language(["en", "nl-BE"], "nl") == 1
    assert pick_language(["de", "en"], "en-GB") == 1
