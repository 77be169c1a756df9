"""The preview of a message: what would be sent (placeholders filled, signature included),
rendered through core.services.compose like every send, storing nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import ErrorCode, FieldError, InputError
from core.mail import render as r
from core.mail.languages import normalize_language
from core.models import Application, Candidate, Company, Employee, Interview, Position
from core.models.enums import TemplateKind
from core.services import compose
from core.services.mail_context import ContextRows, interviewer_names, render_context
from core.services.mail_settings import MailOwner, owner_for_application, subsidiary_of_position


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
