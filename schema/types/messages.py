"""Messages (the outbox and inbound replies), their status history and bulk operations."""

import uuid
from datetime import datetime

import strawberry
from tortoise.queryset import QuerySet

from core import models
from schema.context import Info
from schema.enums import (
    BulkOperationKind,
    BulkOperationState,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from schema.relay import Node, Page, PageInfo, gid, node_resolver, paginate
from schema.types.candidates import Application, Candidate, load_application, load_candidate
from schema.types.company import Employee, load_employee
from schema.types.documents import Document
from schema.types.interviews import Interview, load_interview


@strawberry.type
class MessageEvent:
    status: MessageStatus  # type: ignore[valid-type]
    at: datetime
    detail: str | None


@strawberry.type
class Message(Node):
    kind: MessageKind  # type: ignore[valid-type]
    direction: MessageDirection  # type: ignore[valid-type]
    status: MessageStatus  # type: ignore[valid-type]
    from_name: str
    from_address: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    body: str = strawberry.field(description="As sent: placeholders filled, signature included.")
    created_at: datetime
    scheduled_at: datetime | None
    sent_at: datetime | None
    attempts: int
    error: str | None = strawberry.field(description=(
        "Why the last attempt failed, in words a recruiter can act on."))
    expected_send_at: datetime | None = strawberry.field(default=None, description=(
        "When a message held back by its company mail server's limits (or a server that "
        "asked to slow down) is expected to go out; it stays QUEUED until then."))
    row: strawberry.Private[models.Message]

    @classmethod
    def from_row(cls, row: models.Message) -> "Message":
        return cls(
            id=gid("Message", row.id), kind=row.kind, direction=row.direction,
            status=row.status, from_name=row.from_name, from_address=row.from_address,
            to=list(row.to_addrs or []), cc=list(row.cc_addrs or []),
            bcc=list(row.bcc_addrs or []), subject=row.subject, body=row.body,
            created_at=row.created_at, scheduled_at=row.scheduled_at, sent_at=row.sent_at,
            attempts=row.attempts, error=row.error, row=row,
            expected_send_at=row.expected_send_at,
        )

    @strawberry.field
    async def candidate(self, info: Info) -> Candidate:
        found = await load_candidate(info, self.row.candidate_id)
        assert found is not None
        return found

    @strawberry.field
    async def application(self, info: Info) -> Application | None:
        return await load_application(info, self.row.application_id)

    @strawberry.field
    async def interview(self, info: Info) -> Interview | None:
        return await load_interview(info, self.row.interview_id)

    @strawberry.field
    async def bulk_operation(self, info: Info) -> "BulkOperation | None":
        return await load_bulk_operation(info, self.row.bulk_operation_id)

    @strawberry.field
    async def sender(self, info: Info) -> Employee | None:
        return await load_employee(info, self.row.sender_id)

    @strawberry.field
    async def attachments(self, info: Info) -> list[Document]:
        # Only those the viewer may see: the loader applies the access rule in its query.
        docs = await info.context.loaders.attachments_by_message.load(self.row.id)
        return [Document.from_row(d, recipient_id=self.row.candidate_id) for d in docs]

    @strawberry.field(description="Every status change, oldest first.")
    async def events(self, info: Info) -> list[MessageEvent]:
        rows = await info.context.loaders.events_by_message.load(self.row.id)
        return [MessageEvent(status=r.status, at=r.at, detail=r.detail) for r in rows]


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: Page[models.Message]) -> "MessageConnection":
        return cls(edges=[MessageEdge(cursor=c, node=Message.from_row(r))
                          for r, c in zip(page.rows, page.cursors, strict=True)],
                   page_info=page.page_info, total_count=page.total_count)


async def message_connection(info: Info, qs: QuerySet[models.Message], first: int | None,
                             after: str | None) -> MessageConnection:
    """Newest first. `qs` must already be scoped to the viewer's company."""
    return MessageConnection.from_page(await paginate(qs, first, after))


@strawberry.type
class BulkOperation(Node):
    kind: BulkOperationKind  # type: ignore[valid-type]
    state: BulkOperationState  # type: ignore[valid-type]
    total: int
    queued: int
    sent: int
    failed: int
    scheduled_at: datetime | None
    created_at: datetime
    expected_completion_at: datetime | None = strawberry.field(default=None, description=(
        "When its last message is expected to go out, when its company's mail server "
        "limits hold messages back; null when nothing was held back."))
    row: strawberry.Private[models.BulkOperation]

    @classmethod
    def from_row(cls, row: models.BulkOperation) -> "BulkOperation":
        return cls(id=gid("BulkOperation", row.id), kind=row.kind, state=row.state,
                   total=row.total, queued=row.queued, sent=row.sent, failed=row.failed,
                   scheduled_at=row.scheduled_at, created_at=row.created_at, row=row,
                   expected_completion_at=row.expected_completion_at)

    @strawberry.field
    async def created_by(self, info: Info) -> Employee:
        found = await load_employee(info, self.row.created_by_id)
        assert found is not None
        return found

    @strawberry.field
    async def messages(
        self, info: Info, first: int | None = 50, after: str | None = None,
        status: MessageStatus | None = None,  # type: ignore[valid-type]
    ) -> MessageConnection:
        qs = models.Message.filter(company_id=info.context.company_id,
                                   bulk_operation_id=self.row.id)
        if status is not None:
            qs = qs.filter(status=status)
        return await message_connection(info, qs, first, after)


@node_resolver("Message")
async def load_message(info: Info, pk: uuid.UUID | None) -> Message | None:
    if pk is None:
        return None
    row = await info.context.loaders.message.load(pk)
    return Message.from_row(row) if row else None


@node_resolver("BulkOperation")
async def load_bulk_operation(info: Info, pk: uuid.UUID | None) -> BulkOperation | None:
    if pk is None:
        return None
    row = await info.context.loaders.bulk_operation.load(pk)
    return BulkOperation.from_row(row) if row else None
