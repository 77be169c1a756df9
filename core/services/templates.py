"""Email templates: saving them with their language versions, the render context, previews
(rendered through core.services.compose, like every send)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from tortoise.transactions import in_transaction

from core.errors import ErrorCode, FieldError, InputError
from core.mail import render as r
from core.mail.languages import normalize_language
from core.models import (
    Application,
    Candidate,
    Company,
    EmailTemplate,
    EmailTemplateTranslation,
    Employee,
    Interview,
    Position,
    RejectionReason,
    Subsidiary,
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


# --- the render context ------------------------------------------------------------------


@dataclass
class ContextRows:
    company: Company
    candidate: Candidate
    sender: Employee | None = None
    application: Application | None = None
    position: Position | None = None
    interview: Interview | None = None
    interviewers: list[str] = field(default_factory=list)
    rejection_reason: RejectionReason | None = None
    # The position's subsidiary: its name is the `company.name` of the mail.
    subsidiary: Subsidiary | None = None


def render_context(rows: ContextRows) -> r.RenderContext:
    c = rows.candidate
    owner_name = (rows.subsidiary or rows.company).name
    interview = None
    if rows.interview is not None:
        i = rows.interview
        interview = r.InterviewCtx(title=i.title, starts_at=i.starts_at, ends_at=i.ends_at,
                                   timezone=i.timezone, location=i.location,
                                   video_link=i.video_link, interviewers=list(rows.interviewers))
    return r.RenderContext(
        candidate=r.CandidateCtx(first_name=c.first_name, last_name=c.last_name,
                                 full_name=c.full_name, email=c.email, language=c.language,
                                 timezone=c.timezone),
        company=r.CompanyCtx(name=owner_name),
        sender=(r.SenderCtx(name=rows.sender.name, email=rows.sender.email) if rows.sender
                else r.SenderCtx(name=owner_name, email=None)),
        position=r.PositionCtx(title=rows.position.title) if rows.position else None,
        interview=interview,
        rejection=r.RejectionCtx(reason=rows.rejection_reason.label) if rows.rejection_reason else None,
    )


async def interviewer_names(interview: Interview) -> list[str]:
    return [e.name for e in await interview.interviewers.all().order_by("name")]


@dataclass
class Preview:
    subject: str
    body: str
    from_name: str
    from_address: str
    missing: list[str]
    errors: list[FieldError]
    language: str = "en"


async def preview_message(
    *, employee: Employee, candidate_id: uuid.UUID | None = None,
    application_id: uuid.UUID | None = None, interview_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None, use_template: bool = False,
    subject: str | None = None, body: str | None = None, bad_ids: Sequence[str] = (),
    kind: TemplateKind | None = None,
) -> Preview:
    """What would be sent (placeholders filled, signature included), storing nothing: the
    same source and rendering as the send mutations (core.services.compose). With ``kind``
    and no template, the default text of that kind (what rescheduleInterview and
    cancelInterview send when given no text). Unfillable placeholders are listed, and also
    reported as TEMPLATE_ERROR errors."""
    from core.services import compose
    from core.services.mail_settings import (
        MailOwner,
        owner_for_application,
        subsidiary_of_position,
    )

    company = await Company.get(id=employee.company_id)
    from_name, from_address = MailOwner(company).identity(employee)
    errors: list[FieldError] = [FieldError(ErrorCode.NOT_FOUND, "No such object.", ("input", f))
                                for f in bad_ids]
    interview = application = candidate = None
    if interview_id is not None:
        interview = await Interview.get_or_none(id=interview_id, company_id=company.id)
        if interview is None:
            errors.append(FieldError(ErrorCode.NOT_FOUND, "No such interview.", ("input", "interviewId")))
        else:
            application_id = application_id or interview.application_id
    if application_id is not None:
        application = await Application.get_or_none(id=application_id, company_id=company.id)
        if application is None:
            errors.append(FieldError(ErrorCode.NOT_FOUND, "No such application.",
                                     ("input", "applicationId")))
        else:
            candidate_id = candidate_id or application.candidate_id
            # Mails about the application go out under its position's subsidiary, if any.
            from_name, from_address = (await owner_for_application(
                company, application.id)).identity(employee)
    if candidate_id is not None:
        candidate = await Candidate.get_or_none(id=candidate_id, company_id=company.id)
    if candidate is None:
        errors.append(FieldError(ErrorCode.NOT_FOUND, "A candidate (or an application or "
                                 "interview) is needed to preview.", ("input", "candidateId")))
    language = normalize_language(candidate.language if candidate else None) or "en"
    try:
        source = await compose.resolve_source(
            company=company, kinds=tuple(TemplateKind), template_id=template_id,
            use_template=use_template, subject=subject, body=body, default_kind=kind)
    except InputError as exc:
        return Preview("", "", from_name, from_address, [], errors + exc.errors, language)
    if errors or candidate is None:
        return Preview("", "", from_name, from_address, [], errors, language)
    position = await Position.get(id=application.position_id) if application else None
    rows = ContextRows(company=company, candidate=candidate, sender=employee,
                       application=application, position=position,
                       subsidiary=await subsidiary_of_position(position),
                       interview=interview,
                       interviewers=await interviewer_names(interview) if interview else [])
    composed, language, missing, errors = compose.preview(source, render_context(rows))
    if composed is None:
        return Preview("", "", from_name, from_address, missing, errors, language)
    return Preview(composed.subject, r.with_signature(composed.body, employee.signature), from_name,
                   from_address, missing, [], language)
