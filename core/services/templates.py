"""Email templates: save-time checks, the render context, rendering, previews."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from tortoise.transactions import in_transaction

from core.errors import ErrorCode, FieldError, InputError
from core.mail import render as r
from core.models import (
    Application,
    Candidate,
    Company,
    EmailTemplate,
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


async def save_template(
    *, employee: Employee, template_id: uuid.UUID | None = None, name: str, kind: TemplateKind,
    subject: str, body: str, attachment_ids: Sequence[uuid.UUID | None] = (), creating: bool,
) -> EmailTemplate:
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
    errors += template_errors(r.validate_template(subject, body, kind.value), ("input",))
    docs, e = await resolve_attachable(employee, list(attachment_ids), candidate_id=None,
                                       path=("input", "attachmentDocumentIds"))
    errors += e
    if errors:
        raise InputError(errors)
    async with in_transaction():
        if tpl is None:
            tpl = await EmailTemplate.create(company_id=company.id, name=name.strip(), kind=kind,
                                             subject=subject, body=body)
        else:
            tpl.name, tpl.kind, tpl.subject, tpl.body = name.strip(), kind, subject, body
            await tpl.save()
            await tpl.attachments.clear()
        if docs:
            await tpl.attachments.add(*docs)
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


def render_text(subject: str, body: str, ctx: r.RenderContext,
                prefix: tuple[str, ...] = ("input",)) -> r.RenderedText:
    """Render, turning every template problem into TEMPLATE_ERROR field errors."""
    try:
        return r.render(subject, body, ctx)
    except r.TemplateError as exc:
        raise InputError(template_errors([exc], prefix)) from None


@dataclass
class Preview:
    subject: str
    body: str
    from_name: str
    from_address: str
    missing: list[str]
    errors: list[FieldError]


async def preview_message(
    *, employee: Employee, candidate_id: uuid.UUID | None = None,
    application_id: uuid.UUID | None = None, interview_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None, use_template: bool = False,
    subject: str | None = None, body: str | None = None, bad_ids: Sequence[str] = (),
) -> Preview:
    """What would be sent (placeholders filled, signature included), storing nothing.
    Unfillable placeholders are listed, and also reported as TEMPLATE_ERROR errors."""
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
    if template_id is not None or use_template:
        try:
            tpl = await load_template(company, template_id, ("input", "templateId"))
        except InputError as exc:
            return Preview("", "", from_name, from_address, [], errors + exc.errors)
        subject, body = tpl.subject, tpl.body
    if subject is None or body is None:
        errors.append(FieldError(ErrorCode.INVALID_INPUT, "Give templateId, or subject and body.",
                                 ("input", "subject" if subject is None else "body")))
    if errors or candidate is None or subject is None or body is None:
        return Preview("", "", from_name, from_address, [], errors)
    position = await Position.get(id=application.position_id) if application else None
    rows = ContextRows(company=company, candidate=candidate, sender=employee,
                       application=application, position=position,
                       subsidiary=await subsidiary_of_position(position),
                       interview=interview,
                       interviewers=await interviewer_names(interview) if interview else [])
    ctx = render_context(rows)
    try:
        missing = r.missing_placeholders(subject, body, ctx)
    except r.TemplateError as exc:
        return Preview("", "", from_name, from_address, [], template_errors([exc], ("input",)))
    try:
        rendered = r.render(subject, body, ctx)
    except r.TemplateError as exc:
        return Preview("", "", from_name, from_address, missing, template_errors([exc], ("input",)))
    return Preview(rendered.subject, r.with_signature(rendered.body, employee.signature), from_name,
                   from_address, missing, [])
