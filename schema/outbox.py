"""What an outbox dashboard reads besides the message list: counts by status, the list of
bulk operations and the latest calendar answers (the /outbox page is one such client)."""

from typing import Any

import strawberry
from tortoise.functions import Count

from core import models
from core.models.enums import AttendeeResponse as Response
from core.models.enums import BulkOperationState as BState
from core.models.enums import MessageStatus as S
from schema.context import Info
from schema.enums import BulkOperationState, MessageDirection, MessageStatus
from schema.errors import INVALID_INPUT, graphql_error
from schema.relay import Connection, connection, paginate, registered
from schema.subscriptions import InterviewResponseChange
from schema.types.interviews import Interview
from schema.types.messages import BulkOperation

MAX_RESPONSES = 100


@strawberry.type(description="How many of the company's messages are in one status.")
class MessageStatusCount:
    status: MessageStatus  # type: ignore[valid-type]
    count: int


@registered
@strawberry.type
class BulkOperationConnection(Connection[BulkOperation]):
    pass


@strawberry.type
class OutboxQuery:
    @strawberry.field(description=(
        "How many of the company's messages are in each status, every status listed (zero "
        "included) in the order of MessageStatus; narrowed to one direction when given."))
    async def message_counts(
        self, info: Info,
        direction: MessageDirection | None = None,  # type: ignore[valid-type]
    ) -> list[MessageStatusCount]:
        qs = models.Message.filter(company_id=info.context.company_id)
        if direction is not None:
            qs = qs.filter(direction=direction)
        rows: list[dict[str, Any]] = await (
            qs.annotate(n=Count("id")).group_by("status").values("status", "n"))
        counts = {S(r["status"]): int(r["n"]) for r in rows}
        return [MessageStatusCount(status=s, count=counts.get(s, 0)) for s in S]

    @strawberry.field(description=(
        "The company's bulk operations, newest first; narrowed to one state when given."))
    async def bulk_operations(
        self, info: Info, first: int | None = 50, after: str | None = None,
        state: BulkOperationState | None = None,  # type: ignore[valid-type]
    ) -> BulkOperationConnection:
        qs = models.BulkOperation.filter(company_id=info.context.company_id)
        if state is not None:
            qs = qs.filter(state=BState(state))
        return connection(await paginate(qs, first, after), "BulkOperation")

    @strawberry.field(description=(
        "The latest recorded calendar replies of candidates, newest first: one per "
        "interview (its current answer), the same shape as interviewResponseChanged."))
    async def interview_responses(self, info: Info,
                                  first: int | None = 10) -> list[InterviewResponseChange]:
        size = 10 if first is None else first
        if not 1 <= size <= MAX_RESPONSES:
            raise graphql_error(f"`first` must be between 1 and {MAX_RESPONSES}.", INVALID_INPUT)
        rows = await (models.Interview
                      .filter(company_id=info.context.company_id,
                              candidate_responded_at__isnull=False)
                      .order_by("-candidate_responded_at", "-id").limit(size))
        return [InterviewResponseChange(interview=Interview.from_row(r),
                                        response=Response(r.candidate_response),
                                        comment=r.candidate_comment,
                                        at=r.candidate_responded_at)
                for r in rows if r.candidate_responded_at is not None]
