"""Interviews and their calendar invitations (iMIP REQUEST / CANCEL, RFC 6047 / 5546)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.transactions import in_transaction

from core.errors import ErrorCode, FieldError, InputError
from core.mail import ics
from core.mail.details import interview_details, resolve_locale
from core.models import Application, Candidate, Company, Employee, Interview, Message, Position
from core.models.enums import AttendeeResponse, MessageKind, TemplateKind
from core.security import signed_address
from core.services import mail_settings, messaging
from core.services import templates as tpl_service
from core.services.documents import StagedFile, discard_all
from core.settings import get_settings

MAX_TITLE = 300

_WORDS = {
    "en": {"update": "Updated invitation", "cancel": "Cancelled", "invite": "Invitation",
           "update_intro": "The interview has moved. The new details:",
           "cancel_intro": "The interview below has been cancelled."},
    "nl": {"update": "Gewijzigde uitnodiging", "cancel": "Geannuleerd", "invite": "Uitnodiging",
           "update_intro": "Het gesprek is verplaatst. De nieuwe gegevens:",
           "cancel_intro": "Het onderstaande gesprek is geannuleerd."},
    "de": {"update": "Geänderte Einladung", "cancel": "Abgesagt", "invite": "Einladung",
           "update_intro": "Das Gespräch wurde verschoben. Die neuen Angaben:",
           "cancel_intro": "Das folgende Gespräch wurde abgesagt."},
}


def _words(language: str | None) -> dict[str, str]:
    return _WORDS.get(resolve_locale(language).language, _WORDS["en"])


def _check_zone(name: str | None, path: tuple[str, ...]) -> list[FieldError]:
    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError):
        return [FieldError(ErrorCode.INVALID_INPUT, f"{name!r} is not an IANA time zone.", path)]
    return []


def _check_times(starts_at: datetime, ends_at: datetime, p: tuple[str, ...]) -> list[FieldError]:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        return [FieldError(ErrorCode.INVALID_INPUT, "Times need an offset.", (*p, "startsAt"))]
    if ends_at <= starts_at:
        return [FieldError(ErrorCode.INVALID_INPUT, "The end must be after the start.", (*p, "endsAt"))]
    return []


def _check_link(link: str | None, path: tuple[str, ...]) -> list[FieldError]:
    if link is None or link == "":
        return []
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in link for c in " \r\n"):
        return [FieldError(ErrorCode.INVALID_INPUT, "The video link must be an http(s) URL.", path)]
    return []


async def _load_interview(employee: Employee, interview_id: uuid.UUID | None,
                          path: tuple[str, ...]) -> Interview:
    iv = None
    if interview_id is not None:
        iv = await Interview.get_or_none(id=interview_id, company_id=employee.company_id)
    if iv is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such interview.", path))
    return iv


async def schedule_interview(
    *, employee: Employee, application_id: uuid.UUID | None, starts_at: datetime,
    ends_at: datetime, title: str | None = None, timezone: str | None = None,
    location: str | None = None, video_link: str | None = None,
    interviewer_ids: Sequence[uuid.UUID | None] = (),
) -> Interview:
    p = ("input",)
    app = None
    if application_id is not None:
        app = await Application.get_or_none(id=application_id, company_id=employee.company_id)
    if app is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such application.", (*p, "applicationId")))
    candidate = await Candidate.get(id=app.candidate_id)
    position = await Position.get(id=app.position_id)
    zone = timezone or candidate.timezone or "UTC"
    errors = _check_times(starts_at, ends_at, p) + _check_zone(zone, (*p, "timezone"))
    errors += _check_link(video_link, (*p, "videoLink"))
    title = (title or "").strip() or f"Interview: {position.title}"
    if len(title) > MAX_TITLE or "\n" in title or "\r" in title:
        errors.append(FieldError(ErrorCode.INVALID_INPUT, "The title must be one short line.",
                                 (*p, "title")))
    interviewers: list[Employee] = []
    for i, eid in enumerate(interviewer_ids):
        emp = await Employee.get_or_none(id=eid, company_id=employee.company_id) if eid else None
        if emp is None:
            errors.append(FieldError(ErrorCode.NOT_FOUND, "No such employee.",
                                     (*p, "interviewerIds", str(i))))
        elif emp not in interviewers:
            interviewers.append(emp)
    if errors:
        raise InputError(errors)
    iid = uuid.uuid4()
    async with in_transaction():
        iv = await Interview.create(
            id=iid, company_id=employee.company_id, application_id=app.id, title=title,
            starts_at=starts_at.astimezone(UTC), ends_at=ends_at.astimezone(UTC), timezone=zone,
            location=(location or None), video_link=(video_link or None), organizer_id=employee.id,
            uid=f"{iid}@{get_settings().mail_domain}", sequence=0,
        )
        if interviewers:
            await iv.interviewers.add(*interviewers)
    return iv


async def details_for(iv: Interview, candidate: Candidate) -> str:
    ctx = tpl_service.render_context(tpl_service.ContextRows(
        company=await Company.get(id=iv.company_id), candidate=candidate, interview=iv,
        interviewers=await tpl_service.interviewer_names(iv)))
    assert ctx.interview is not None
    return interview_details(ctx.interview, candidate.language, candidate.timezone)


async def _event_spec(iv: Interview, candidate: Candidate, description: str) -> ics.EventSpec:
    organizer = await Employee.get(id=iv.organizer_id)
    return ics.EventSpec(
        uid=iv.uid, sequence=iv.sequence, summary=iv.title, description=description,
        starts_at=iv.starts_at, ends_at=iv.ends_at, timezone=iv.timezone, location=iv.location,
        video_link=iv.video_link, organizer_name=organizer.name,
        organizer_email=signed_address("i", iv.id), attendee_name=candidate.full_name,
        attendee_email=candidate.email or "",
    )


async def send_invitation(
    *, employee: Employee, interview_id: uuid.UUID | None, template_id: uuid.UUID | None = None,
    use_template: bool = False, subject: str | None = None, body: str | None = None,
    cc: Sequence[str] | None = None, bcc: Sequence[str] | None = None,
    document_ids: Sequence[uuid.UUID | None] = (), new_files: Sequence[StagedFile] = (),
    scheduled_at: datetime | None = None, idempotency_key: str | None = None,
) -> Message:
    """The invitation mail with a METHOD:REQUEST calendar object for the interview."""
    p = ("input",)
    try:
        existing = await messaging.find_by_idempotency_key(employee.company_id, idempotency_key)
        if existing is not None:
            discard_all(new_files)
            return existing
        iv = await _load_interview(employee, interview_id, (*p, "interviewId"))
        if iv.cancelled:
            raise InputError(FieldError(ErrorCode.INVALID_STATE, "The interview was cancelled.",
                                        (*p, "interviewId")))
        app = await Application.get(id=iv.application_id)
        candidate = await Candidate.get(id=app.candidate_id)
        env = await messaging.check_envelope(
            employee=employee, candidate=candidate, application=app, cc=cc, bcc=bcc,
            scheduled_at=scheduled_at, document_ids=document_ids)
        errors = env.errors + messaging.check_idempotency_key(idempotency_key, (*p, "idempotencyKey"))
        position = await Position.get(id=app.position_id)
        rows = tpl_service.ContextRows(
            company=env.company, candidate=candidate, sender=employee, application=app,
            position=position, interview=iv,
            interviewers=await tpl_service.interviewer_names(iv),
            subsidiary=await mail_settings.subsidiary_of_position(position))
        template_docs = []
        if template_id is not None or use_template:
            tpl = await tpl_service.load_template(env.company, template_id, (*p, "templateId"),
                                                  kind=TemplateKind.INTERVIEW_INVITATION)
            subject, body = tpl.subject, tpl.body
            template_docs = list(await tpl.attachments.all())
        else:
            errors += messaging.check_subject(subject, (*p, "subject"))
            errors += messaging.check_body(body, (*p, "body"))
        if errors:
            raise InputError(errors)
        assert subject is not None and body is not None
        # Written text may use placeholders too; rendering also refuses unknown names.
        rendered = tpl_service.render_text(subject, body, tpl_service.render_context(rows))
    except BaseException:
        discard_all(new_files)
        raise
    text = messaging.with_signature(rendered.body, employee.signature)
    spec = await _event_spec(iv, candidate, rendered.body)
    draft = messaging.Draft(
        company=env.company, candidate=candidate, kind=MessageKind.INTERVIEW_INVITATION,
        subject=rendered.subject, body=text, sender=employee, application_id=app.id,
        interview_id=iv.id, cc=env.cc, bcc=env.bcc, scheduled_at=env.when,
        idempotency_key=idempotency_key, documents=[*template_docs, *env.documents],
        ics=ics.build_request(spec), ics_method="REQUEST", new_files=list(new_files),
    )

    async def mark_sent_invitation(_: list[Message]) -> None:
        await Interview.filter(id=iv.id).update(invitation_sent=True)

    return await messaging.store_one(draft, also=mark_sent_invitation)


async def _notice(iv: Interview, employee: Employee, *, cancel: bool) -> messaging.Draft:
    app = await Application.get(id=iv.application_id)
    candidate = await Candidate.get(id=app.candidate_id)
    company = await Company.get(id=iv.company_id)
    words = _words(candidate.language)
    details = await details_for(iv, candidate)
    intro = words["cancel_intro"] if cancel else words["update_intro"]
    body = f"{intro}\n\n{details}"
    spec = await _event_spec(iv, candidate, body)
    return messaging.Draft(
        company=company, candidate=candidate,
        kind=MessageKind.INTERVIEW_CANCELLATION if cancel else MessageKind.INTERVIEW_UPDATE,
        subject=f"{words['cancel' if cancel else 'update']}: {iv.title}",
        body=messaging.with_signature(body, employee.signature), sender=employee,
        application_id=app.id, interview_id=iv.id,
        ics=ics.build_cancel(spec) if cancel else ics.build_request(spec),
        ics_method="CANCEL" if cancel else "REQUEST",
    )


async def reschedule_interview(
    *, employee: Employee, interview_id: uuid.UUID | None, starts_at: datetime, ends_at: datetime,
    location: str | None = None, video_link: str | None = None, notify: bool = True,
) -> tuple[Interview, Message | None]:
    """New time; when an invitation went out, an update (same UID, SEQUENCE + 1) and the
    candidate's answer back to NEEDS_ACTION until they answer the new time (RFC 5546)."""
    p = ("input",)
    iv = await _load_interview(employee, interview_id, (*p, "interviewId"))
    errors = _check_times(starts_at, ends_at, p) + _check_link(video_link, (*p, "videoLink"))
    if iv.cancelled:
        errors.append(FieldError(ErrorCode.INVALID_STATE, "The interview was cancelled.",
                                 (*p, "interviewId")))
    if errors:
        raise InputError(errors)
    iv.starts_at, iv.ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    if location is not None:
        iv.location = location or None
    if video_link is not None:
        iv.video_link = video_link or None
    send = notify and iv.invitation_sent
    if send:
        iv.sequence += 1
        iv.candidate_response = AttendeeResponse.NEEDS_ACTION
        iv.candidate_responded_at = None
        iv.candidate_comment = None  # type: ignore[assignment]
        draft = await _notice(iv, employee, cancel=False)

        async def save(_: list[Message]) -> None:
            await iv.save()

        msg = await messaging.store_one(draft, also=save)
        return iv, msg
    await iv.save()
    return iv, None


async def cancel_interview(
    *, employee: Employee, interview_id: uuid.UUID | None, notify: bool = True,
) -> tuple[Interview, Message | None]:
    p = ("input",)
    iv = await _load_interview(employee, interview_id, (*p, "interviewId"))
    if iv.cancelled:
        raise InputError(FieldError(ErrorCode.INVALID_STATE, "The interview is already cancelled.",
                                    (*p, "interviewId")))
    iv.cancelled = True
    if notify and iv.invitation_sent:
        iv.sequence += 1
        draft = await _notice(iv, employee, cancel=True)

        async def save(_: list[Message]) -> None:
            await iv.save()

        msg = await messaging.store_one(draft, also=save)
        return iv, msg
    await iv.save()
    return iv, None
