"""Messages: the list and lookups, sending, retrying and cancelling."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from strawberry.file_uploads import Upload

from core import models
from core.errors import FieldError
from core.services import bulk, messaging
from core.services.documents import StagedFile
from schema.context import Info
from schema.enums import MessageStatus
from schema.errors import Payload, not_found, payload_of
from schema.relay import by_id, uuid_of
from schema.types.messages import (
    BulkOperation,
    Message,
    MessageConnection,
    message_connection,
)
from schema.uploads import checked_template_id, ids_or_errors, stage_uploads, template_id_or_error

P = TypeVar("P")
R = TypeVar("R")


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
class MessagePayload(Payload):
    message: Message | None = None


@strawberry.type
class MessageQuery:
    message: Message | None = strawberry.field(resolver=by_id("Message"))

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

    bulk_operation: BulkOperation | None = strawberry.field(resolver=by_id("BulkOperation"))


@strawberry.input
class SendBulkEmailInput:
    application_ids: list[strawberry.ID]
    template_id: strawberry.ID | None = None
    subject: str | None = None
    body: str | None = None
    attachments: list[Upload] | None = strawberry.field(default_factory=list)
    document_ids: list[strawberry.ID] | None = strawberry.field(default_factory=list)
    scheduled_at: datetime | None = None
    idempotency_key: str | None = None


@strawberry.input
class RejectApplicationsInput:
    application_ids: list[strawberry.ID]
    reason_id: strawberry.ID
    note: str | None = None
    anonymize: bool | None = strawberry.field(default=False, description=(
        "Erase the candidates' personal data; when an email is sent too, only after it was "
        "sent."))
    send_email: bool | None = strawberry.field(default=False, description=(
        "Send a rejection email made from templateId (the 'reject via email' box)."))
    template_id: strawberry.ID | None = None
    scheduled_at: datetime | None = None
    idempotency_key: str | None = None


@strawberry.type
class BulkOperationPayload(Payload):
    bulk_operation: BulkOperation | None = None


@strawberry.type
class MessageMutation:
    @strawberry.mutation
    async def send_message(self, info: Info, input: SendMessageInput) -> MessagePayload:
        errors: list[FieldError] = []
        candidate_id = uuid_of(input.candidate_id, "Candidate")
        if candidate_id is None:
            errors.append(not_found("candidate", "input", "candidateId"))
        application_id = None
        if input.application_id is not None:
            application_id = uuid_of(input.application_id, "Application")
            if application_id is None:
                errors.append(not_found("application", "input", "applicationId"))
        return await _sending(MessagePayload, input, errors, lambda template_id, doc_ids, files: (
            messaging.send_message(
                employee=info.context.viewer, candidate_id=candidate_id,
                application_id=application_id, subject=input.subject, body=input.body,
                template_id=template_id, use_template=input.template_id is not None,
                cc=input.cc or [], bcc=input.bcc or [], scheduled_at=input.scheduled_at,
                idempotency_key=input.idempotency_key, document_ids=doc_ids, new_files=files,
            )), message_payload)

    @strawberry.mutation
    async def send_bulk_email(self, info: Info, input: SendBulkEmailInput) -> BulkOperationPayload:
        app_ids = [uuid_of(a, "Application") for a in input.application_ids]
        return await _sending(BulkOperationPayload, input, [], lambda template_id, doc_ids, files: (
            bulk.send_bulk_email(
                employee=info.context.viewer, application_ids=app_ids, template_id=template_id,
                use_template=input.template_id is not None, subject=input.subject,
                body=input.body, document_ids=doc_ids, new_files=files,
                scheduled_at=input.scheduled_at, idempotency_key=input.idempotency_key)),
            _bulk_payload)

    @strawberry.mutation
    async def reject_applications(self, info: Info,
                                  input: RejectApplicationsInput) -> BulkOperationPayload:
        template_id, errors = checked_template_id(input.template_id)
        return await payload_of(BulkOperationPayload, lambda: bulk.reject_applications(
            employee=info.context.viewer,
            application_ids=[uuid_of(a, "Application") for a in input.application_ids],
            reason_id=uuid_of(input.reason_id, "RejectionReason"), note=input.note,
            anonymize=bool(input.anonymize), send_email=bool(input.send_email),
            template_id=template_id, use_template=input.template_id is not None,
            scheduled_at=input.scheduled_at, idempotency_key=input.idempotency_key),
            _bulk_payload, errors)

    @strawberry.mutation(description="Cancel a scheduled bulk operation: every message of it, "
                                     "or none when it already started.")
    async def cancel_bulk_operation(self, info: Info, id: strawberry.ID) -> BulkOperationPayload:
        return await payload_of(BulkOperationPayload, lambda: bulk.cancel_bulk_operation(
            employee=info.context.viewer, bulk_id=uuid_of(id, "BulkOperation")), _bulk_payload)

    @strawberry.mutation(description=(
        "Queue a FAILED or BOUNCED message again: a new attempt to the same recipients. "
        "Any other status is refused with INVALID_STATE."))
    async def retry_message(self, info: Info, id: strawberry.ID) -> MessagePayload:
        return await _on_message(info, id, messaging.retry_message)

    @strawberry.mutation
    async def cancel_scheduled_message(self, info: Info, id: strawberry.ID) -> MessagePayload:
        return await _on_message(info, id, messaging.cancel_scheduled_message)


def message_payload(row: models.Message) -> MessagePayload:
    return MessagePayload(message=Message.from_row(row))


def _bulk_payload(row: models.BulkOperation) -> BulkOperationPayload:
    return BulkOperationPayload(bulk_operation=BulkOperation.from_row(row))


async def _sending(payload: Callable[..., P], input: SendMessageInput | SendBulkEmailInput,
                   errors: list[FieldError],
                   send: Callable[[uuid.UUID | None, list[Any], list[StagedFile]], Awaitable[R]],
                   result: Callable[[R], P]) -> P:
    """The payload of sending what `input` names: its templateId and documentIds as uuids
    (NOT_FOUND for each bad one, after `errors`); once all checked out, its new files
    (`attachments`) staged and `send(template_id, document_ids, files)` run."""
    template_id = template_id_or_error(input.template_id, errors)
    doc_ids, more = ids_or_errors(input.document_ids, "Document", "input", "documentIds")

    async def act() -> R:
        files = await stage_uploads(input.attachments, "input", "attachments")
        return await send(template_id, doc_ids, files)

    return await payload_of(payload, act, result, [*errors, *more])


async def _on_message(info: Info, id: strawberry.ID,
                      action: Callable[..., Awaitable[models.Message]]) -> MessagePayload:
    """One action of the employee on one message (retry, cancel): its payload."""
    return await payload_of(MessagePayload, lambda: action(
        employee=info.context.viewer, message_id=uuid_of(id, "Message")), message_payload)
