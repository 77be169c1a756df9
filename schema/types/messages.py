"""Messages (the outbox and inbound replies), their status history and bulk operations."""

from datetime import datetime
from typing import Any, Self

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
from schema.relay import (
    Connection,
    FromRow,
    Node,
    build,
    connection,
    lazy,
    lazy_list,
    load,
    load_required,
    loaded_node,
    paginate,
    present,
    registered,
)
from schema.types.company import Employee, load_employee


@strawberry.type
class MessageEvent:
    status: MessageStatus  # type: ignore[valid-type]
    at: datetime
    detail: str | None


@registered
@strawberry.type
class Message(Node, FromRow):
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
    def from_row(cls, row: models.Message, **values: Any) -> Self:
        return super().from_row(row, to=list(row.to_addrs or []), cc=list(row.cc_addrs or []),
                                bcc=list(row.bcc_addrs or []), **values)

    @strawberry.field(graphql_type=lazy("Candidate", "schema.types.candidates"))
    async def candidate(self, info: Info) -> Node:
        return await load_required(info, "Candidate", self.row.candidate_id)

    @strawberry.field(graphql_type=lazy("Application", "schema.types.candidates") | None)
    async def application(self, info: Info) -> Node | None:
        return await load(info, "Application", self.row.application_id)

    @strawberry.field(graphql_type=lazy("Interview", "schema.types.interviews") | None)
    async def interview(self, info: Info) -> Node | None:
        return await load(info, "Interview", self.row.interview_id)

    @strawberry.field
    async def bulk_operation(self, info: Info) -> "BulkOperation | None":
        return await load(info, "BulkOperation", self.row.bulk_operation_id)

    @strawberry.field
    async def sender(self, info: Info) -> Employee | None:
        return await load_employee(info, self.row.sender_id)

    @strawberry.field(graphql_type=lazy_list("Document", "schema.types.documents"))
    async def attachments(self, info: Info) -> list[Node]:
        # Only those the viewer may see: the loader applies the access rule in its query.
        docs = await info.context.loaders.attachments_by_message.load(self.row.id)
        return [build("Document", d, recipient_id=self.row.candidate_id) for d in docs]

    @strawberry.field(description="Every status change, oldest first.")
    async def events(self, info: Info) -> list[MessageEvent]:
        rows = await info.context.loaders.events_by_message.load(self.row.id)
        return [MessageEvent(status=r.status, at=r.at, detail=r.detail) for r in rows]


@registered
@strawberry.type
class MessageConnection(Connection[Message]):
    pass


async def message_connection(info: Info, qs: QuerySet[models.Message], first: int | None,
                             after: str | None) -> MessageConnection:
    """Newest first. `qs` must already be scoped to the viewer's company."""
    return connection(await paginate(qs, first, after), "Message")


@registered
@strawberry.type
class BulkOperation(Node, FromRow):
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

    @strawberry.field
    async def created_by(self, info: Info) -> Employee:
        return present(await load_employee(info, self.row.created_by_id))

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


load_message = loaded_node("Message", "message")
load_bulk_operation = loaded_node("BulkOperation", "bulk_operation")
