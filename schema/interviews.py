"""Interviews: lookups, scheduling, rescheduling, cancelling and the invitation."""

from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload

from core import models
from core.services import interviews as service
from schema.context import Info
from schema.errors import Payload, payload_of
from schema.messages import MessagePayload, message_payload
from schema.relay import by_id, uuid_of
from schema.types.interviews import Interview
from schema.types.messages import Message
from schema.uploads import checked_template_id, ids_or_errors, stage_uploads, template_id_or_error


@strawberry.input
class ScheduleInterviewInput:
    application_id: strawberry.ID
    title: str | None = None
    starts_at: datetime
    ends_at: datetime
    timezone: str | None = None
    location: str | None = None
    video_link: str | None = None
    interviewer_ids: list[strawberry.ID] | None = strawberry.field(default_factory=list)


@strawberry.input
class RescheduleInterviewInput:
    interview_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    location: str | None = None
    video_link: str | None = None
    notify_candidate: bool | None = strawberry.field(default=True, description=(
        "Send the updated invitation (same UID, SEQUENCE + 1) when one was sent before."))
    template_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "An INTERVIEW_UPDATE template. Without it and without subject/body: the company's "
        "default INTERVIEW_UPDATE template, else the starter text, in the candidate's language."))
    subject: str | None = strawberry.field(default=None, description=(
        "The update's subject (placeholders filled); alone, it replaces the default's."))
    body: str | None = strawberry.field(default=None, description=(
        "The update's text (placeholders filled); alone, it replaces the default's."))


@strawberry.input
class CancelInterviewInput:
    interview_id: strawberry.ID
    notify_candidate: bool | None = strawberry.field(
        default=True, description="Send an iTIP CANCEL when an invitation was sent before.")
    template_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "An INTERVIEW_CANCELLATION template. Without it and without subject/body: the "
        "company's default INTERVIEW_CANCELLATION template, else the starter text, in the "
        "candidate's language."))
    subject: str | None = strawberry.field(default=None, description=(
        "The cancellation's subject (placeholders filled); alone, it replaces the default's."))
    body: str | None = strawberry.field(default=None, description=(
        "The cancellation's text (placeholders filled); alone, it replaces the default's."))


@strawberry.input
class SendInterviewInvitationInput:
    interview_id: strawberry.ID
    template_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "An INTERVIEW_INVITATION template. Without it and without subject/body: the company's "
        "default invitation template, else the starter text, in the candidate's language."))
    subject: str | None = None
    body: str | None = None
    cc: list[str] | None = strawberry.field(default_factory=list)
    bcc: list[str] | None = strawberry.field(default_factory=list)
    attachments: list[Upload] | None = strawberry.field(default_factory=list)
    document_ids: list[strawberry.ID] | None = strawberry.field(default_factory=list)
    scheduled_at: datetime | None = None
    idempotency_key: str | None = None


@strawberry.type
class InterviewPayload(Payload):
    interview: Interview | None = None
    message: Message | None = strawberry.field(
        default=None, description="The update or cancellation sent to the candidate, if any.")


@strawberry.type
class InterviewQuery:
    interview: Interview | None = strawberry.field(resolver=by_id("Interview"))


@strawberry.type
class InterviewMutation:
    @strawberry.mutation
    async def schedule_interview(self, info: Info, input: ScheduleInterviewInput) -> InterviewPayload:
        interviewers, errors = ids_or_errors(input.interviewer_ids, "Employee", "input",
                                             "interviewerIds")
        return await payload_of(InterviewPayload, lambda: service.schedule_interview(
            employee=info.context.viewer,
            application_id=uuid_of(input.application_id, "Application"),
            starts_at=input.starts_at, ends_at=input.ends_at, title=input.title,
            timezone=input.timezone, location=input.location, video_link=input.video_link,
            interviewer_ids=interviewers), _interview_payload, errors)

    @strawberry.mutation
    async def reschedule_interview(self, info: Info,
                                   input: RescheduleInterviewInput) -> InterviewPayload:
        template_id, errors = checked_template_id(input.template_id)
        return await payload_of(InterviewPayload, lambda: service.reschedule_interview(
            employee=info.context.viewer, interview_id=uuid_of(input.interview_id, "Interview"),
            starts_at=input.starts_at, ends_at=input.ends_at, location=input.location,
            video_link=input.video_link, notify=input.notify_candidate is not False,
            template_id=template_id, use_template=input.template_id is not None,
            subject=input.subject, body=input.body), _changed_payload, errors)

    @strawberry.mutation
    async def cancel_interview(self, info: Info, input: CancelInterviewInput) -> InterviewPayload:
        template_id, errors = checked_template_id(input.template_id)
        return await payload_of(InterviewPayload, lambda: service.cancel_interview(
            employee=info.context.viewer, interview_id=uuid_of(input.interview_id, "Interview"),
            notify=input.notify_candidate is not False, template_id=template_id,
            use_template=input.template_id is not None, subject=input.subject,
            body=input.body), _changed_payload, errors)

    @strawberry.mutation
    async def send_interview_invitation(self, info: Info,
                                        input: SendInterviewInvitationInput) -> MessagePayload:
        doc_ids, errors = ids_or_errors(input.document_ids, "Document", "input", "documentIds")
        template_id = template_id_or_error(input.template_id, errors)

        async def send() -> models.Message:
            files = await stage_uploads(input.attachments, "input", "attachments")
            return await service.send_invitation(
                employee=info.context.viewer, interview_id=uuid_of(input.interview_id, "Interview"),
                template_id=template_id, subject=input.subject, body=input.body,
                cc=input.cc or [], bcc=input.bcc or [], document_ids=doc_ids, new_files=files,
                scheduled_at=input.scheduled_at, idempotency_key=input.idempotency_key)

        return await payload_of(MessagePayload, send, message_payload, errors)


def _interview_payload(row: models.Interview) -> InterviewPayload:
    return InterviewPayload(interview=Interview.from_row(row))


def _changed_payload(changed: tuple[models.Interview, models.Message | None]) -> InterviewPayload:
    """An interview moved or cancelled, with the message that told the candidate, if any."""
    row, msg = changed
    return InterviewPayload(interview=Interview.from_row(row),
                            message=Message.from_row(msg) if msg else None)
