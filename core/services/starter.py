"""The starter set: the email templates and rejection reasons every company begins with.

The texts live as plain files in the top-level ``templates`` package (``<language>/<kind>.txt``
and ``<language>/rejection_reasons.txt``), so that recruiters and translators can read and
change them without touching code. A company with the templates add-on gets its own
editable copy (one template per kind, with every language as a version); without the add-on,
interview updates and cancellations are written straight from these files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from core.errors import ErrorCode, FieldError, InputError
from core.models import Company, EmailTemplate, EmailTemplateTranslation, RejectionReason
from core.models.enums import TemplateKind

STARTER_LANGUAGES = ("en", "nl", "de")
STARTER_PACKAGE = "templates"


@dataclass(frozen=True)
class StarterText:
    kind: TemplateKind
    language: str
    name: str
    subject: str
    body: str


def _read(language: str, filename: str) -> str:
    return (resources.files(STARTER_PACKAGE) / language / filename).read_text(encoding="utf-8")


def parse_starter(text: str, kind: TemplateKind, language: str) -> StarterText:
    """``Name:`` and ``Subject:`` lines, an empty line, the body."""
    head, sep, body = text.replace("\r\n", "\n").partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        key, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"starter {language}/{kind.value.lower()}: bad header line {line!r}")
        headers[key.strip().lower()] = value.strip()
    if not sep or not headers.get("name") or not headers.get("subject"):
        raise ValueError(f"starter {language}/{kind.value.lower()}: needs Name, Subject and a body")
    return StarterText(kind, language, headers["name"], headers["subject"], body.rstrip("\n") + "\n")


@lru_cache(maxsize=64)
def starter_text(kind: TemplateKind, language: str) -> StarterText:
    """The starter template of ``kind`` in one of STARTER_LANGUAGES."""
    if language not in STARTER_LANGUAGES:
        raise ValueError(f"no starter templates in {language!r}")
    return parse_starter(_read(language, f"{kind.value.lower()}.txt"), kind, language)


def starter_versions(kind: TemplateKind, first: str = "en") -> list[StarterText]:
    """Every language version of a starter template, ``first`` first."""
    order = [first, *(lang for lang in STARTER_LANGUAGES if lang != first)]
    return [starter_text(kind, lang) for lang in order]


@lru_cache(maxsize=8)
def starter_rejection_reasons(language: str) -> tuple[str, ...]:
    if language not in STARTER_LANGUAGES:
        raise ValueError(f"no starter rejection reasons in {language!r}")
    lines = _read(language, "rejection_reasons.txt").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


def check_starter_language(language: str | None, path: tuple[str, ...] = ()) -> str:
    """The language for a new company's starter set; INVALID_INPUT for one we have none in."""
    lang = (language or "en").strip().lower()
    if lang not in STARTER_LANGUAGES:
        raise InputError(FieldError(
            ErrorCode.INVALID_INPUT,
            f"No starter set in {language!r}; choose one of {', '.join(STARTER_LANGUAGES)}.", path))
    return lang


async def seed_templates(company: Company, language: str = "en") -> list[EmailTemplate]:
    """The company's own copy of the starter templates: one per kind, written in
    ``language`` with the other languages as translations, each the default of its kind.
    Call inside the transaction that creates the company."""
    rows: list[EmailTemplate] = []
    for kind in TemplateKind:
        own, *others = starter_versions(kind, first=language)
        tpl = await EmailTemplate.create(company_id=company.id, name=own.name, kind=kind,
                                         language=own.language, is_default=True,
                                         subject=own.subject, body=own.body)
        await EmailTemplateTranslation.bulk_create([
            EmailTemplateTranslation(template_id=tpl.id, language=o.language, subject=o.subject,
                                     body=o.body) for o in others])
        rows.append(tpl)
    return rows


async def seed_rejection_reasons(company: Company, language: str = "en") -> None:
    await RejectionReason.bulk_create([RejectionReason(company_id=company.id, label=label)
                                       for label in starter_rejection_reasons(language)])


async def seed_if_empty(company: Company, language: str = "en") -> None:
    """The starter set for a company made before there was one (``recruitmail dev`` keeps
    its company across versions): reasons when it has none, templates likewise."""
    from tortoise.transactions import in_transaction

    async with in_transaction():
        if not await RejectionReason.filter(company_id=company.id).exists():
            await seed_rejection_reasons(company, language)
        if company.feature_email_templates and not await EmailTemplate.filter(
                company_id=company.id).exists():
            await seed_templates(company, language)
