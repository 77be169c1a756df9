"""Interviews and their calendar invitations (iMIP REQUEST / CANCEL, RFC 6047 / 5546)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.transactions import in_transaction

from core.errors import ErrorCode, FieldError, InputError
from core.mail import ics
from core.mail.details import resolve_locale
from core.models import Application, Candidate, Company, Employee, Interview, Message, Position
from core.models.enums import AttendeeResponse, MessageKind, TemplateKind
from core.security import signed_address
from core.services import compose, mail_context, mail_settings, message_checks, messaging
from core.services.documents import StagedFile, discard_all
from core.settings import get_settings
from core.text_input import TIMEZONE, text_errors

MAX_TITLE = 300

# The default interview title (calendar summary and ``interview.title``), in the candidate's
# language; reschedule and cancellation texts come from templates (core.services.compose).
_DEFAULT_TITLE = {
    "en": "Interview – {position}",
    "nl": "Sollicitatiegesprek – {position}",
    "de": "Vorstellungsgespräch – {position}",
    "fr": "Entretien – {position}",
    "es": "Entrevista – {position}",
}


def default_title(position_title: str, language: str | None) -> str:
    pattern = _DEFAULT_TITLE.get(resolve_locale(language).language, _DEFAULT_TITLE["en"])
    return pattern.format(position=" ".join(position_title.split()))


def _check_zone(name: str | None, path: tuple[str, ...]) -> list[FieldError]:
    # Checked for length and characters before the lookup: the name becomes a file path.
    errors = text_errors(name or "", TIMEZONE, path)
    if errors:
        return errors
    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return [FieldError(ErrorCode.INVALID_INPUT, f"{name!r} is not an IANA time zone.", path)]
    return []


MAX_DURATION = timedelta(hours=24)
MAX_PAST = timedelta(days=1)
MAX_AHEAD_YEARS = 2


def _years_ahead(now: datetime, years: int) -> datetime:
    try:
        return now.replace(year=now.year + years)
    except ValueError:  # 29 February
        return now.replace(year=now.year + years, day=28)


def _check_times(starts_at: datetime, ends_at: datetime, p: tuple[str, ...]) -> list[FieldError]:
    """An interview is at most a day long, starts no more than a day ago (a late entry)
    and no more than two years ahead: anything else is a typo that would still be sent."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        return [FieldError(ErrorCode.INVALID_INPUT, "Times need an offset.", (*p, "startsAt"))]
    errors: list[FieldError] = []
    now = datetime.now(UTC)
    if starts_at < now - MAX_PAST:
        errors.append(FieldError(ErrorCode.INVALID_INPUT,
                                 "The start is more than a day in the past.", (*p, "startsAt")))
    elif starts_at > _years_ahead(now, MAX_AHEAD_YEARS):
        errors.append(FieldError(ErrorCode.INVALID_INPUT,
                                 f"The start is more than {MAX_AHEAD_YEARS} years ahead.",
                                 (*p, "startsAt")))
    if ends_at <= starts_at:
        errors.append(FieldError(ErrorCode.INVALID_INPUT, "The end must be after the start.",
                                 (*p, "endsAt")))
    elif ends_at - starts_at > MAX_DURATION:
        errors.append(FieldError(ErrorCode.INVALID_INPUT,
                                 "An interview lasts at most 24 hours.", (*p, "endsAt")))
    return errors


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
    # An anonymised candidate has no address: nothing about their interviews can be sent.
    if await Candidate.filter(applications__id=iv.application_id,
                              anonymized_at__isnull=False).exists():
        raise InputError(FieldError(ErrorCode.INVALID_STATE,
                                    "The candidate was anonymised; their interviews are over.",
                                    path))
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
    if candidate.anonymized_at is not None:
        raise InputError(FieldError(ErrorCode.INVALID_STATE, "The candidate was anonymised.",
                                    (*p, "applicationId")))
    position = await Position.get(id=app.position_id)
    zone = timezone or candidate.timezone or "UTC"
    errors = _check_times(starts_at, ends_at, p) + _check_zone(zone, (*p, "timezone"))
    errors += _check_link(video_link, (*p, "videoLink"))
    title = (title or "").strip() or default_title(position.title, candidate.language)
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
    """The invitation mail with a METHOD:REQUEST calendar object for the interview, written
    from ``template_id``, or ``subject``/``body``, else the company's default invitation
    template or the starter text, in the candidate's language."""
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
        errors = env.errors + message_checks.check_idempotency_key(idempotency_key, (*p, "idempotencyKey"))
        source = None
        try:
            source = await compose.resolve_source(
                company=env.company, kinds=(TemplateKind.INTERVIEW_INVITATION,),
                template_id=template_id, use_template=use_template, subject=subject, body=body,
                default_kind=TemplateKind.INTERVIEW_INVITATION)
        except InputError as exc:
            errors += exc.errors
        if errors or source is None:
            raise InputError(errors)
        position = await Position.get(id=app.position_id)
        rows = mail_context.ContextRows(
            company=env.company, candidate=candidate, sender=employee, application=app,
            position=position, interview=iv,
            interviewers=await mail_context.interviewer_names(iv),
            subsidiary=await mail_settings.subsidiary_of_position(position))
        rendered = compose.compose(source, mail_context.render_context(rows))
    except BaseException:
        discard_all(new_files)
        raise
    text = messaging.with_signature(rendered.body, employee.signature)
    spec = await _event_spec(iv, candidate, rendered.body)
    draft = messaging.Draft(
        company=env.company, candidate=candidate, kind=MessageKind.INTERVIEW_INVITATION,
        subject=rendered.subject, body=text, sender=employee, application_id=app.id,
        interview_id=iv.id, cc=env.cc, bcc=env.bcc, scheduled_at=env.when,
        idempotency_key=idempotency_key,
        documents=messaging.unique_documents([*source.documents, *env.documents]),
        ics=ics.build_request(spec), ics_method="REQUEST", new_files=list(new_files),
    )

    async def mark_sent_invitation(_: list[Message]) -> None:
        await Interview.filter(id=iv.id).update(invitation_sent=True)

    return await messaging.store_one(draft, also=mark_sent_invitation)


async def _notice(iv: Interview, employee: Employee, source: compose.Source, *,
                  cancel: bool) -> messaging.Draft:
    """The update or cancellation mail of an interview (already moved or cancelled in
    memory), written from ``source`` in the candidate's language."""
    app = await Application.get(id=iv.application_id)
    candidate = await Candidate.get(id=app.candidate_id)
    company = await Company.get(id=iv.company_id)
    rows = mail_context.ContextRows(
        company=company, candidate=candidate, sender=employee, application=app,
        position=await Position.get(id=app.position_id), interview=iv,
        interviewers=await mail_context.interviewer_names(iv))
    rendered = compose.compose(source, mail_context.render_context(rows))
    spec = await _event_spec(iv, candidate, rendered.body)
    return messaging.Draft(
        company=company, candidate=candidate,
        kind=MessageKind.INTERVIEW_CANCELLATION if cancel else MessageKind.INTERVIEW_UPDATE,
        subject=rendered.subject,
        body=messaging.with_signature(rendered.body, employee.signature), sender=employee,
        application_id=app.id, interview_id=iv.id, documents=list(source.documents),
        ics=ics.build_cancel(spec) if cancel else ics.build_request(spec),
        ics_method="CANCEL" if cancel else "REQUEST",
    )


async def _notice_source(employee: Employee, kind: TemplateKind, template_id: uuid.UUID | None,
                         use_template: bool, subject: str | None,
                         body: str | None) -> compose.Source:
    company = await Company.get(id=employee.company_id)
    return await compose.resolve_source(
        company=company, kinds=(kind,), template_id=template_id, use_template=use_template,
        subject=subject, body=body, default_kind=kind)


async def cancellations_for(
    application_ids: Sequence[uuid.UUID], employee: Employee, *, bulk_operation_id: uuid.UUID,
) -> tuple[list[Interview], list[messaging.Draft]]:
    """The upcoming interviews of these applications, cancelled (unsaved: the caller writes
    them with its own rows), and a METHOD:CANCEL draft for each whose invitation was sent,
    so the candidate's calendar loses it (anonymisation waits for these to go out)."""
    rows = await Interview.filter(application_id__in=list(application_ids), cancelled=False,
                                  ends_at__gt=datetime.now(UTC))
    drafts: list[messaging.Draft] = []
    source: compose.Source | None = None
    for iv in rows:
        iv.cancelled = True
        candidate = await Candidate.filter(applications__id=iv.application_id).first()
        if iv.invitation_sent and candidate is not None and candidate.email \
                and candidate.anonymized_at is None:
            iv.sequence += 1
            if source is None:
                source = await _notice_source(employee, TemplateKind.INTERVIEW_CANCELLATION,
                                              None, False, None, None)
            draft = await _notice(iv, employee, source, cancel=True)
            draft.bulk_operation_id = bulk_operation_id
            drafts.append(draft)
    return rows, drafts


async def reschedule_interview(
    *, employee: Employee, interview_id: uuid.UUID | None, starts_at: datetime, ends_at: datetime,
    location: str | None = None, video_link: str | None = None, notify: bool = True,
    template_id: uuid.UUID | None = None, use_template: bool = False,
    subject: str | None = None, body: str | None = None,
) -> tuple[Interview, Message | None]:
    """New time; when an invitation went out, an update (same UID, SEQUENCE + 1) and the
    candidate's answer back to NEEDS_ACTION until they answer the new time (RFC 5546).
    The update is written from ``template_id`` (INTERVIEW_UPDATE), or ``subject``/``body``,
    else the company's default INTERVIEW_UPDATE template or the starter text, in the
    candidate's language."""
    p = ("input",)
    iv = await _load_interview(employee, interview_id, (*p, "interviewId"))
    errors = _check_times(starts_at, ends_at, p) + _check_link(video_link, (*p, "videoLink"))
    if iv.cancelled:
        errors.append(FieldError(ErrorCode.INVALID_STATE, "The interview was cancelled.",
                                 (*p, "interviewId")))
    source = None
    try:
        source = await _notice_source(employee, TemplateKind.INTERVIEW_UPDATE, template_id,
                                      use_template, subject, body)
    except InputError as exc:
        errors += exc.errors
    if errors or source is None:
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
        draft = await _notice(iv, employee, source, cancel=False)

        async def save(_: list[Message]) -> None:
            await iv.save()

        msg = await messaging.store_one(draft, also=save)
        return iv, msg
    await iv.save()
    return iv, None


async def cancel_interview(
    *, employee: Employee, interview_id: uuid.UUID | None, notify: bool = True,
    template_id: uuid.UUID | None = None, use_template: bool = False,
    subject: str | None = None, body: str | None = None,
) -> tuple[Interview, Message | None]:
    """Cancel; when an invitation went out, a METHOD:CANCEL mail written like a reschedule's
    update (INTERVIEW_CANCELLATION template, text, default or starter text)."""
    p = ("input",)
    iv = await _load_interview(employee, interview_id, (*p, "interviewId"))
    if iv.cancelled:
        raise InputError(FieldError(ErrorCode.INVALID_STATE, "The interview is already cancelled.",
                                    (*p, "interviewId")))
    source = await _notice_source(employee, TemplateKind.INTERVIEW_CANCELLATION, template_id,
                                  use_template, subject, body)
    iv.cancelled = True
    if notify and iv.invitation_sent:
        iv.sequence += 1
        draft = await _notice(iv, employee, source, cancel=True)

        async def save(_: list[Message]) -> None:
            await iv.save()

        msg = await messaging.store_one(draft, also=save)
        return iv, msg
    await iv.save()
    return iv, None
