"""Email templates: saving, loading and deleting them with their language versions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from core.errors import ErrorCode, FieldError, InputError
from core.mail import render as r
from core.mail.languages import normalize_language
from core.models import (
    Company,
    EmailTemplate,
    EmailTemplateTranslation,
    Employee,
)
from core.models.enums import TemplateKind
from core.services.documents import resolve_attachable


def template_errors(exc_list: Sequence[r.TemplateError], prefix: tuple[str, ...]) -> list[FieldError]:
    return [FieldError(ErrorCode.TEMPLATE_ERROR, str(e), (*prefix, e.field)) for e in exc_list]


async def require_templates_feature(company: Company, path: tuple[str, ...]) -> None:
    if not company.feature_email_templates:
        raise InputError(FieldError(ErrorCode.FEATURE_NOT_ENABLED,
                                    "Email templates are not enabled for this company.", path))


async def load_template(company: Company, template_id: uuid.UUID | None,
                        path: tuple[str, ...], kind: TemplateKind | None = None) -> EmailTemplate:
    await require_templates_feature(company, path)
    tpl = None
    if template_id is not None:
        tpl = await EmailTemplate.get_or_none(id=template_id, company_id=company.id)
    if tpl is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such template.", path))
    if kind is not None and tpl.kind != kind:
        raise InputError(FieldError(ErrorCode.INVALID_INPUT,
                                    f"This needs a {kind.value} template, not {tpl.kind.value}.", path))
    return tpl


@dataclass(frozen=True)
class TranslationInput:
    language: str
    subject: str
    body: str


def _check_versions(
    kind: TemplateKind, language: str, subject: str, body: str,
    translations: Sequence[TranslationInput] | None,
) -> tuple[str | None, list[TranslationInput], list[FieldError]]:
    """The normalised language and translations of a template being saved, and every
    problem of every version (a translation's errors name its language)."""
    errors: list[FieldError] = []
    own = normalize_language(language)
    if own is None:
        errors.append(FieldError(ErrorCode.INVALID_INPUT,
                                 f"{language!r} is not a language tag (like en, nl or nl-BE).",
                                 ("input", "language")))
    main = template_errors(r.validate_template(subject, body, kind.value), ("input",))
    if translations:
        # With several versions, every message says which one it is about.
        main = [FieldError(e.code, f"{own or language} version: {e.message}", e.field)
                for e in main]
    errors += main
    seen = {own.lower()} if own else set()
    out: list[TranslationInput] = []
    for i, t in enumerate(translations or ()):
        path = ("input", "translations", str(i))
        lang = normalize_language(t.language)
        if lang is None:
            errors.append(FieldError(ErrorCode.INVALID_INPUT,
                                     f"{t.language!r} is not a language tag (like en, nl or nl-BE).",
                                     (*path, "language")))
        elif lang.lower() in seen:
            errors.append(FieldError(ErrorCode.INVALID_INPUT,
                                     f"The template already has a {lang} version.",
                                     (*path, "language")))
        else:
            seen.add(lang.lower())
        errors += [FieldError(ErrorCode.TEMPLATE_ERROR, f"{lang or t.language} version: {e}",
                              (*path, e.field))
                   for e in r.validate_template(t.subject, t.body, kind.value)]
        out.append(TranslationInput(lang or t.language, t.subject, t.body))
    return own, out, errors


async def save_template(
    *, employee: Employee, template_id: uuid.UUID | None = None, name: str, kind: TemplateKind,
    subject: str, body: str, attachment_ids: Sequence[uuid.UUID | None] = (), creating: bool,
    language: str | None = None, translations: Sequence[TranslationInput] | None = None,
    is_default: bool | None = None,
) -> EmailTemplate:
    """Create or update a template with its language versions. None keeps what an updated
    template has (``language``, ``translations``, ``is_default``) and, when creating, means
    "en", none and False; [] removes the translations. A default template stops being one
    for the others of its kind."""
    company = await Company.get(id=employee.company_id)
    await require_templates_feature(company, ("input",))
    tpl = None
    if not creating:
        tpl = await EmailTemplate.get_or_none(id=template_id, company_id=company.id) if template_id else None
        if tpl is None:
            raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such template.", ("id",)))
    errors: list[FieldError] = []
    if not name.strip():
        errors.append(FieldError(ErrorCode.INVALID_INPUT, "A name is required.", ("input", "name")))
    if language is None:
        language = tpl.language if tpl is not None else "en"
    own, versions, e = _check_versions(kind, language, subject, body, translations)
    errors += e
    if translations is None and tpl is not None and own is not None:
        # Kept translations must still suit the (possibly new) kind and language.
        kept = [TranslationInput(t.language, t.subject, t.body) for t in
                await EmailTemplateTranslation.filter(template_id=tpl.id).order_by("language")]
        kept = [t for t in kept if t.language.lower() != own.lower()]
        for t in kept:
            errors += [FieldError(ErrorCode.TEMPLATE_ERROR, f"{t.language} version: {e}",
                                  ("input", "translations"))
                       for e in r.validate_template(t.subject, t.body, kind.value)]
        versions, translations = kept, kept
    docs, e = await resolve_attachable(employee, list(attachment_ids), candidate_id=None,
                                       path=("input", "attachmentDocumentIds"))
    errors += e
    if errors:
        raise InputError(errors)
    assert own is not None
    async with in_transaction():
        if tpl is None:
            tpl = await EmailTemplate.create(company_id=company.id, name=name.strip(), kind=kind,
                                             subject=subject, body=body, language=own,
                                             is_default=bool(is_default))
        else:
            tpl.name, tpl.kind, tpl.subject, tpl.body = name.strip(), kind, subject, body
            tpl.language = own
            if is_default is not None:
                tpl.is_default = is_default
            await tpl.save()
            await tpl.attachments.clear()
        if docs:
            await tpl.attachments.add(*docs)
        if translations is not None:
            await EmailTemplateTranslation.filter(template_id=tpl.id).delete()
            await EmailTemplateTranslation.bulk_create([
                EmailTemplateTranslation(template_id=tpl.id, language=t.language,
                                         subject=t.subject, body=t.body) for t in versions])
        if tpl.is_default:
            await EmailTemplate.filter(company_id=company.id, kind=kind, is_default=True).exclude(
                id=tpl.id).update(is_default=False)
    return tpl


async def delete_template(*, employee: Employee, template_id: uuid.UUID | None) -> uuid.UUID:
    company = await Company.get(id=employee.company_id)
    await require_templates_feature(company, ("id",))
    tpl = await EmailTemplate.get_or_none(id=template_id, company_id=company.id) if template_id else None
    if tpl is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such template.", ("id",)))
    await tpl.delete()
    return tpl.id
