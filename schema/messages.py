"""Messages: the list and lookups, sending, retrying and cancelling."""

from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload

from core import models
from core.errors import ErrorCode, FieldError, InputError
from core.services import messaging
from schema.context import Info
from schema.enums import MessageStatus
from schema.errors import UserError, field_error, not_found, user_errors
from schema.relay import uuid_of
from schema.types.messages import (
    BulkOperation,
    Message,
    MessageConnection,
    load_bulk_operation,
    load_message,
    message_connection,
)


@strawberry.input(description="Fields shared by every way of sending. Either templateId, or "
                              "subject and body.")
class SendMessageInput:
    candidate_id: strawberry.ID
    application_id: strawberry.ID | None = None
    template_id: strawberry.ID | None = None
    subject: str | None = None
    body: str | None = None
    cc: list[str] | None = strawberry.field(default_factory=list)
    bcc: list[str] | None = strawberry.field(default_factory=list)
    attachments: list[Upload] | None = strawberry.field(
        default_factory=list, description="New files, each at most 10 MB.")
    document_ids: list[strawberry.ID] | None = strawberry.field(
        default_factory=list, description=(
            "Documents already stored for this candidate (sent or received before) to attach "
            "again."))
    scheduled_at: datetime | None = strawberry.field(
        default=None, description="Send later; null sends now.")
    idempotency_key: str | None = strawberry.field(default=None, description=(
        "Repeating a mutation with the same key returns the first result and sends nothing "
        "twice."))


@strawberry.type
class MessagePayload:
    message: Message | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MessageQuery:
    @strawberry.field
    async def message(self, info: Info, id: strawberry.ID) -> Message | None:
        return await load_message(info, uuid_of(id, "Message"))

    @strawberry.field
    async def messages(
        self, info: Info, first: int | None = 50, after: str | None = None,
        status: MessageStatus | None = None,  # type: ignore[valid-type]
        candidate_id: strawberry.ID | None = None,
        bulk_operation_id: strawberry.ID | None = None,
    ) -> MessageConnection:
        qs = models.Message.filter(company_id=info.context.company_id)
        if status is not None:
            qs = qs.filter(status=status)
        # A malformed or foreign id filters to nothing, as if it did not exist.
        if candidate_id is not None:
            qs = qs.filter(candidate_id=uuid_of(candidate_id, "Candidate"))
        if bulk_operation_id is not None:
            qs = qs.filter(bulk_operation_id=uuid_of(bulk_operation_id, "BulkOperation"))
        return await message_connection(info, qs, first, after)

    @strawberry.field
    async def bulk_operation(self, info: Info, id: strawberry.ID) -> BulkOperation | None:
        return await load_bulk_operation(info, uuid_of(id, "BulkOperation"))


def _not_yet_available(data: SendMessageInput) -> list[FieldError]:
    # Templates and attachments arrive with their own services; until then refuse them
    # instead of sending something other than what was asked for.
    errors = []
    if data.template_id is not None:
        errors.append(field_error(ErrorCode.INVALID_INPUT, "templates are not available yet",
                                  "input", "templateId"))
    if data.attachments:
        errors.append(field_error(ErrorCode.INVALID_INPUT, "attachments are not available yet",
                                  "input", "attachments"))
    if data.document_ids:
        errors.append(field_error(ErrorCode.INVALID_INPUT, "attachments are not available yet",
                                  "input", "documentIds"))
    return errors


@strawberry.type
class MessageMutation:
    @strawberry.mutation
    async def send_message(self, info: Info, input: SendMessageInput) -> MessagePayload:
        errors = _not_yet_available(input)
        candidate_id = uuid_of(input.candidate_id, "Candidate")
        if candidate_id is None:
            errors.append(not_found("candidate", "input", "candidateId"))
        application_id = None
        if input.application_id is not None:
            application_id = uuid_of(input.application_id, "Application")
            if application_id is None:
                errors.append(not_found("application", "input", "applicationId"))
        if errors:
            return MessagePayload(errors=user_errors(errors))
        try:
            row = await messaging.send_message(
                employee=info.context.viewer, candidate_id=candidate_id,
                application_id=application_id, subject=input.subject, body=input.body,
                cc=input.cc or [], bcc=input.bcc or [], scheduled_at=input.scheduled_at,
                idempotency_key=input.idempotency_key,
            )
        except InputError as exc:
            return MessagePayload(errors=user_errors(exc))
        return MessagePayload(message=Message.from_row(row))

    @strawberry.mutation
    async def retry_message(self, info: Info, id: strawberry.ID) -> MessagePayload:
        try:
            row = await messaging.retry_message(employee=info.context.viewer,
                                                message_id=uuid_of(id, "Message"))
        except InputError as exc:
            return MessagePayload(errors=user_errors(exc))
        return MessagePayload(message=Message.from_row(row))

    @strawberry.mutation
    async def cancel_scheduled_message(self, info: Info, id: strawberry.ID) -> MessagePayload:
        try:
            row = await messaging.cancel_scheduled_message(employee=info.context.viewer,
                                                           message_id=uuid_of(id, "Message"))
        except InputError as exc:
            return MessagePayload(errors=user_errors(exc))
        return MessagePayload(message=Message.from_row(row))
