"""Live updates from the per-company Redis channel (core.events).

The channel is already per company; every row is nevertheless reloaded through the
viewer's company scope before anything is sent.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

import strawberry
from redis.exceptions import RedisError

from core import events, models
from core.models.enums import AttendeeResponse as Response
from core.models.enums import BulkOperationState as BState
from core.models.enums import MessageStatus as S
from schema.context import Info
from schema.enums import AttendeeResponse, MessageStatus
from schema.errors import NOT_FOUND, graphql_error
from schema.relay import uuid_of
from schema.types.interviews import Interview
from schema.types.messages import BulkOperation, Message

log = logging.getLogger(__name__)

RESUBSCRIBE_MIN_SECONDS = 0.05
RESUBSCRIBE_MAX_SECONDS = 5.0
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


def _at(value: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _same(value: Any, wanted: uuid.UUID | None) -> bool:
    return wanted is not None and value is not None and str(value) == str(wanted)


class CompanyEvents:
    """The company's events, read through a queue so a reader can wait with a timeout.

    Use as `async with CompanyEvents(company_id) as stream:`; the Redis subscription
    starts on entry, before the caller loads any row it wants to follow.
    """

    def __init__(self, company_id: uuid.UUID) -> None:
        self.company_id = company_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        # Redis restarts (or a client closed under us) must not end live dashboards:
        # subscribe again with backoff. Events published meanwhile are lost; pub/sub is
        # best-effort by design and the database holds the truth.
        delay = RESUBSCRIBE_MIN_SECONDS
        while True:
            try:
                async for event in events.subscribe(self.company_id):
                    delay = RESUBSCRIBE_MIN_SECONDS
                    self.queue.put_nowait(event)
            except (RedisError, OSError) as exc:
                log.warning("event subscription of company %s lost (%r); resubscribing",
                            self.company_id, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_SECONDS)

    async def __aenter__(self) -> "CompanyEvents":
        self.task = asyncio.create_task(self._pump(), name=f"events:{self.company_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def next(self, wait: float | None = None) -> dict[str, Any] | None:
        """The next event, or None when `wait` seconds passed without one."""
        assert self.task is not None, "use CompanyEvents in `async with`"
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait({getter, self.task}, timeout=wait,
                                     return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task in done:
            self.task.result()  # the subscription died: raise why
            raise RuntimeError("the event subscription ended")
        return None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            event = await self.next()
            if event is not None:
                yield event


@strawberry.type
class Subscription:
    @strawberry.subscription(description=(
        "Every status change of the company's messages; narrowed by either argument."))
    async def message_status_changed(
        self, info: Info, candidate_id: strawberry.ID | None = None,
        bulk_operation_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[MessageStatusChange, None]:
        company_id = info.context.company_id
        cand = uuid_of(candidate_id, "Candidate") if candidate_id is not None else None
        bulk = (uuid_of(bulk_operation_id, "BulkOperation")
                if bulk_operation_id is not None else None)
        async with CompanyEvents(company_id) as stream:
            async for event in stream:
                if event.get("type") != events.MESSAGE_STATUS:
                    continue
                if candidate_id is not None and not _same(event.get("candidate_id"), cand):
                    continue
                if bulk_operation_id is not None and not _same(
                        event.get("bulk_operation_id"), bulk):
                    continue
                row = await models.Message.get_or_none(id=event.get("message_id"),
                                                       company_id=company_id)
                if row is None:
                    continue
                previous = event.get("previous")
                yield MessageStatusChange(
                    message=Message.from_row(row),
                    previous_status=S(previous) if previous else None,
                    status=S(event["status"]),
                    at=_at(event.get("at")),
                )

    @strawberry.subscription(description=(
        "Every recorded calendar reply; narrowed to one interview when given."))
    async def interview_response_changed(
        self, info: Info, interview_id: strawberry.ID | None = None
    ) -> AsyncGenerator[InterviewResponseChange, None]:
        company_id = info.context.company_id
        wanted = uuid_of(interview_id, "Interview") if interview_id is not None else None
        async with CompanyEvents(company_id) as stream:
            async for event in stream:
                if event.get("type") != events.INTERVIEW_RESPONSE:
                    continue
                if interview_id is not None and not _same(event.get("interview_id"), wanted):
                    continue
                row = await models.Interview.get_or_none(id=event.get("interview_id"),
                                                         company_id=company_id)
                if row is None:
                    continue
                yield InterviewResponseChange(
                    interview=Interview.from_row(row),
                    response=Response(event.get("response") or row.candidate_response),
                    comment=event.get("comment"),
                    at=_at(event.get("at")),
                )

    @strawberry.subscription(description=(
        "The operation after each change of its counters, until it completes."))
    async def bulk_operation_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[BulkOperation, None]:
        company_id = info.context.company_id
        pk = uuid_of(id, "BulkOperation")

        async def load() -> models.BulkOperation | None:
            if pk is None:
                return None
            return await models.BulkOperation.get_or_none(id=pk, company_id=company_id)

        async with CompanyEvents(company_id) as stream:
            row = await load()
            if row is None:
                raise graphql_error("No such bulk operation.", NOT_FOUND)
            # The current state first: a client that subscribes late still sees where it is.
            yield BulkOperation.from_row(row)
            last = (row.state, row.queued, row.sent, row.failed)
            while row.state not in FINAL_BULK_STATES:
                event = await stream.next(wait=BULK_RECHECK_SECONDS)
                if event is not None and not (
                    event.get("type") == events.BULK_PROGRESS
                    and _same(event.get("bulk_operation_id"), pk)
                ):
                    continue
                fresh = await load()
                if fresh is None:
                    return
                row = fresh
                now = (row.state, row.queued, row.sent, row.failed)
                if now != last:
                    last = now
                    yield BulkOperation.from_row(row)
