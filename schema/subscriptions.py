"""Live updates from the per-company Redis channel (core.events), through schema.live.

Every subscription of a company in this process reads the company's one hub; each has
its own bounded queue. Rows are reloaded through the company scope (once per Redis
message for all subscribers) before anything is sent.
"""

import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

import strawberry

import schema.live as live
from core import events, models
from core.models.enums import AttendeeResponse as Response
from core.models.enums import BulkOperationState as BState
from core.models.enums import MessageStatus as S
from core.settings import get_settings
from schema.context import Context, Info
from schema.enums import AttendeeResponse, MessageStatus
from schema.errors import NOT_FOUND, graphql_error
from schema.relay import uuid_of
from schema.types.interviews import Interview
from schema.types.messages import BulkOperation, Message

log = logging.getLogger(__name__)

FINAL_BULK_STATES = (BState.COMPLETED, BState.COMPLETED_WITH_ERRORS, BState.CANCELLED)
# How often bulkOperationProgress looks at the row itself, so a progress event lost
# between loading the row and subscribing cannot leave a dashboard waiting forever.
BULK_RECHECK_SECONDS = 2.0


@strawberry.type
class MessageStatusChange:
    message: Message
    previous_status: MessageStatus | None  # type: ignore[valid-type]
    status: MessageStatus  # type: ignore[valid-type]
    at: datetime


@strawberry.type
class InterviewResponseChange:
    interview: Interview
    response: AttendeeResponse  # type: ignore[valid-type]
    comment: str | None
    at: datetime


def change_time(value: Any) -> datetime:
    """An event's `at` (ISO text; without a zone it is UTC; unreadable: now)."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _same(value: Any, wanted: uuid.UUID | None) -> bool:
    return wanted is not None and value is not None and str(value) == str(wanted)


# A shared subscription's own queue is drained by the server, not by a client: once the
# server is this far behind (a bulk sends faster than the api can make results), it
# merges status changes of one message, so the api's work stays bounded; each
# connection's queue (api/live_ws.py) merges for a client that falls behind.
SHARED_BEHIND_SECONDS = live.BEHIND_SECONDS


def _behind_seconds(ctx: Context) -> float:
    return SHARED_BEHIND_SECONDS if ctx.shared else live.BEHIND_SECONDS


def _prefetch_messages(ctx: Context) -> Callable[[live.Delivery], None]:
    def prefetch(delivery: live.Delivery) -> None:
        delivery.prefetch(models.Message, "message_id")
        if ctx.shared:
            delivery.prefetch(models.Candidate, "candidate_id")

    return prefetch


def _limit(ctx: Context) -> int:
    """Events a subscription may have waiting. A shared subscription (api/live_ws.py) is
    paced by the server executing it, not by one client's socket: it gets four times the
    room (each of its connections has its own queue besides)."""
    size = get_settings().ws_queue_size
    return size * 4 if ctx.shared else size


def _bulk_key(event: dict[str, Any]) -> Any:
    return ("b", str(event.get("bulk_operation_id")))


def listen_for(ctx: Context, accept: Callable[[dict[str, Any]], bool], *,
               key: Callable[[dict[str, Any]], Any] | None = None,
               prefetch: Callable[[live.Delivery], Any] | None = None,
               behind: int | None = None) -> live.listen:
    """A listener on the company's hub for the events `accept` takes, sized and paced for
    this subscription's context: its overflow closes the connection (4420), and a shared
    subscription counts every subscriber it serves."""
    return live.listen(ctx.company_id, live.Listener(
        limit=_limit(ctx), behind=behind, accept=accept, key=key, on_overflow=ctx.fall_behind,
        weight=ctx.subscribers, prefetch=prefetch, behind_seconds=_behind_seconds(ctx)))


async def next_events(queue: live.Listener, most: int = 1,
                      wait: float | None = None) -> list[live.Item]:
    """The next events of the queue, up to `most` of one delivery (Redis message); [] after
    `wait` seconds without any. Once the queue overflowed it returns nothing more: it waits
    for the cancellation that closing the connection (4420) brings."""
    item = await queue.get(wait=wait)
    if item is None:
        if queue.overflowed or queue.closed:
            await live.until_closed()
        return []
    items = [item]
    while len(items) < most:
        pending = queue.peek()
        if pending is None or pending[1] is not item[1]:
            break  # one delivery (Redis message) per list
        items.append(queue.get_nowait())  # type: ignore[arg-type]
    return items


BATCH_MAX = 500


def status_filter(candidate_id: str | None,
                  bulk_operation_id: str | None) -> Callable[[dict[str, Any]], bool]:
    """The status events a subscription with these arguments takes (an argument that is
    not an id of its type matches nothing)."""
    cand = uuid_of(candidate_id, "Candidate") if candidate_id is not None else None
    bulk = (uuid_of(bulk_operation_id, "BulkOperation")
            if bulk_operation_id is not None else None)

    def accept(event: dict[str, Any]) -> bool:
        return (event.get("type") == events.MESSAGE_STATUS
                and (candidate_id is None or _same(event.get("candidate_id"), cand))
                and (bulk_operation_id is None
                     or _same(event.get("bulk_operation_id"), bulk)))

    return accept


async def _status_changes(info: Info, candidate_id: strawberry.ID | None,
                          bulk_operation_id: strawberry.ID | None,
                          most: int) -> AsyncGenerator[list[MessageStatusChange], None]:
    """The company's status changes as lists of up to `most`: what is pending at once (of
    one Redis message) goes in one list."""
    ctx = info.context
    accept = status_filter(candidate_id, bulk_operation_id)
    async with listen_for(ctx, accept, key=live.message_key,
                          prefetch=_prefetch_messages(ctx)) as queue:
        while True:
            items = await next_events(queue, most)
            delivery = items[0][1]
            if ctx.shared and not ctx.has_loaders_for(delivery):
                # The candidates of a whole bulk chunk in one query, not one per event.
                ctx.loaders_for(delivery, candidate=await delivery.rows(
                    models.Candidate, "candidate_id"))
            batch, keys = [], []
            for event, _ in items:
                row = await delivery.row(models.Message, "message_id", event.get("message_id"))
                if row is None:
                    continue
                previous = event.get("previous")
                batch.append(MessageStatusChange(
                    message=Message.from_row(row),
                    previous_status=S(previous) if previous else None,
                    status=S(event["status"]), at=change_time(event.get("at"))))
                keys.append(live.message_key(event))
            if batch:
                # Lets the websocket layer merge a change with a later one of the same
                # message for a connection that falls behind.
                ctx.live_key = keys[0] if most == 1 else None
                ctx.live_keys = keys
                yield batch


@strawberry.type
class Subscription:
    @strawberry.subscription(description=(
        "Every status change of the company's messages; narrowed by either argument."))
    async def message_status_changed(
        self, info: Info, candidate_id: strawberry.ID | None = None,
        bulk_operation_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[MessageStatusChange, None]:
        async for batch in _status_changes(info, candidate_id, bulk_operation_id, 1):
            yield batch[0]

    @strawberry.subscription(description=(
        "messageStatusChanged in batches: the changes that arrived together (up to 500, in "
        "order, none left out for a client that keeps up) as one list. For dashboards of "
        "bulk sends: one message per batch instead of one per change."))
    async def message_status_changes(
        self, info: Info, candidate_id: strawberry.ID | None = None,
        bulk_operation_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[list[MessageStatusChange], None]:
        async for batch in _status_changes(info, candidate_id, bulk_operation_id, BATCH_MAX):
            yield batch

    @strawberry.subscription(description=(
        "Every recorded calendar reply; narrowed to one interview when given."))
    async def interview_response_changed(
        self, info: Info, interview_id: strawberry.ID | None = None
    ) -> AsyncGenerator[InterviewResponseChange, None]:
        ctx = info.context
        wanted = uuid_of(interview_id, "Interview") if interview_id is not None else None

        def accept(event: dict[str, Any]) -> bool:
            return (event.get("type") == events.INTERVIEW_RESPONSE
                    and (interview_id is None or _same(event.get("interview_id"), wanted)))

        async with listen_for(ctx, accept, prefetch=lambda d: d.prefetch(
                models.Interview, "interview_id")) as queue:
            while True:
                [(event, delivery)] = await next_events(queue)
                row = await delivery.row(models.Interview, "interview_id",
                                         event.get("interview_id"))
                if row is None:
                    continue
                ctx.live_key = None
                ctx.loaders_for(delivery)
                yield InterviewResponseChange(
                    interview=Interview.from_row(row),
                    response=Response(event.get("response") or row.candidate_response),
                    comment=event.get("comment"),
                    at=change_time(event.get("at")),
                )

    @strawberry.subscription(description=(
        "The operation after each change of its counters, until it completes."))
    async def bulk_operation_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[BulkOperation, None]:
        ctx = info.context
        company_id = ctx.company_id
        pk = uuid_of(id, "BulkOperation")

        async def load() -> models.BulkOperation | None:
            if pk is None:
                return None
            return await models.BulkOperation.get_or_none(id=pk, company_id=company_id)

        def accept(event: dict[str, Any]) -> bool:
            return event.get("type") == events.BULK_PROGRESS and _same(
                event.get("bulk_operation_id"), pk)

        # Every progress event re-reads the row, so pending ones are always merged (the
        # queue never holds more than one: it cannot overflow).
        async with listen_for(ctx, accept, key=_bulk_key, behind=0) as queue:
            row = await load()
            if row is None:
                raise graphql_error("No such bulk operation.", NOT_FOUND)
            # The current state first: a client that subscribes late still sees where it is.
            yield BulkOperation.from_row(row)
            last = (row.state, row.queued, row.sent, row.failed)
            while row.state not in FINAL_BULK_STATES:
                items = await next_events(queue, wait=BULK_RECHECK_SECONDS)
                if not items:
                    fresh = await load()  # nothing heard for a while: look anyway
                else:
                    # One read of the row for every subscriber of this event.
                    fresh = await items[0][1].row(models.BulkOperation, "bulk_operation_id", pk)
                if fresh is None:
                    return
                row = fresh
                now = (row.state, row.queued, row.sent, row.failed)
                if now != last:
                    last = now
                    yield BulkOperation.from_row(row)
