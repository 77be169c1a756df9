"""Transitions of a message's status: their record (MessageEvent rows, bulk counters, in the
caller's transaction) and their publishing after the commit.

core.services.delivery and core.services.claims make the transitions; this module holds
what every one of them writes and announces.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.expressions import F

from core import events
from core.models import BulkOperation, Message, MessageEvent
from core.models.enums import BulkOperationState, MessageStatus

S = MessageStatus

def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Transition:
    message_id: uuid.UUID
    company_id: uuid.UUID
    candidate_id: uuid.UUID
    bulk_operation_id: uuid.UUID | None
    previous: MessageStatus | None
    status: MessageStatus
    at: datetime
    detail: str | None = None

    def event_payload(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "candidate_id": self.candidate_id,
            "bulk_operation_id": self.bulk_operation_id,
            "previous": self.previous,  # StrEnum: encoded as its value
            "status": self.status,
            "at": self.at,
            "detail": self.detail,
        }


def _counter_delta(previous: MessageStatus | None, status: MessageStatus) -> dict[str, int]:
    """How a bulk operation's counters move when one of its messages changes status."""
    delta: dict[str, int] = {}
    pending = (S.QUEUED, S.SENDING, S.SCHEDULED)
    if previous in pending and status not in pending:
        delta["queued"] = -1
    if previous not in pending and status in pending and previous is not None:
        delta["queued"] = delta.get("queued", 0) + 1
    if status in (S.SENT,) and previous != S.SENT:
        delta["sent"] = 1
    if previous == S.SENT and status == S.BOUNCED:
        delta["sent"] = -1
        delta["failed"] = 1
    if status == S.FAILED:
        delta["failed"] = 1
    if previous in (S.FAILED, S.BOUNCED) and status in pending:
        delta["failed"] = -1
    return delta


async def write_events(transitions: Sequence[Transition]) -> None:
    """One MessageEvent per transition, in the caller's transaction: a COPY on PostgreSQL
    when there are several (a chunk, a bulk operation), else ORM inserts."""
    if not transitions:
        return
    conn = connections.get("default")
    if len(transitions) > 1 and conn.capabilities.dialect == "postgres":
        await conn._connection.copy_records_to_table(  # type: ignore[attr-defined]
            "message_event", columns=["message_id", "status", "previous_status", "at", "detail"],
            records=[(t.message_id, t.status.value, t.previous.value if t.previous else None,
                      t.at, t.detail) for t in transitions])
        return
    await MessageEvent.bulk_create(
        [
            MessageEvent(
                message_id=t.message_id,
                status=t.status,
                previous_status=t.previous,
                at=t.at,
                detail=t.detail,
            )
            for t in transitions
        ],
        batch_size=1000,
    )


async def record(transitions: Sequence[Transition]) -> None:
    """Write the events (and bulk counters) for transitions; runs inside the caller's tx."""
    if not transitions:
        return
    await write_events(transitions)
    per_bulk: dict[uuid.UUID, dict[str, int]] = {}
    for t in transitions:
        if t.bulk_operation_id is None:
            continue
        acc = per_bulk.setdefault(t.bulk_operation_id, {})
        for k, v in _counter_delta(t.previous, t.status).items():
            acc[k] = acc.get(k, 0) + v
    for bulk_id, delta in per_bulk.items():
        updates = {k: F(k) + v for k, v in delta.items() if v}
        if updates:
            await BulkOperation.filter(id=bulk_id).update(**updates)


async def publish(transitions: Sequence[Transition]) -> None:
    """The status events, and a progress event for each bulk operation they move (after
    its state is brought up to date), in one PUBLISH a company."""
    by_company: dict[uuid.UUID, list[tuple[str, dict[str, Any]]]] = {}
    bulk_ids: dict[uuid.UUID, uuid.UUID] = {}
    for t in transitions:
        by_company.setdefault(t.company_id, []).append((events.MESSAGE_STATUS, t.event_payload()))
        if t.bulk_operation_id:
            bulk_ids[t.bulk_operation_id] = t.company_id
    for bulk_id, company_id in bulk_ids.items():
        await refresh_bulk_state(bulk_id)
        by_company[company_id].append((events.BULK_PROGRESS, {"bulk_operation_id": bulk_id}))
    for company_id, evs in by_company.items():
        await events.publish_many(company_id, evs)


_BULK_STATE = {
    "postgres": "SELECT state, queued, sent, failed, total FROM bulk_operation WHERE id = $1",
    "sqlite": "SELECT state, queued, sent, failed, total FROM bulk_operation WHERE id = ?",
}


async def refresh_bulk_state(bulk_id: uuid.UUID) -> None:
    """Move a running bulk operation to COMPLETED(_WITH_ERRORS) once nothing is pending.
    (Called after every write of a bulk's mails: one narrow read, written out, while
    messages remain; building it with the ORM was a twentieth of a bulk worker's time.)"""
    conn = connections.get("default")
    dialect = conn.capabilities.dialect
    rows = await conn.execute_query_dict(
        _BULK_STATE.get(dialect, _BULK_STATE["sqlite"]),
        [bulk_id if dialect == "postgres" else str(bulk_id)])
    if not rows:
        return
    row = rows[0]
    current = BulkOperationState(row["state"])
    if row["queued"] <= 0 and current in (BulkOperationState.RUNNING,
                                          BulkOperationState.SCHEDULED):
        pending = await Message.filter(
            bulk_operation_id=bulk_id, status__in=[S.QUEUED, S.SENDING, S.SCHEDULED]
        ).exists()
        if not pending:
            if row["failed"]:
                state = BulkOperationState.COMPLETED_WITH_ERRORS
            elif row["sent"] == 0 and row["total"] > 0:
                state = BulkOperationState.CANCELLED  # every message was cancelled
            else:
                state = BulkOperationState.COMPLETED
            await BulkOperation.filter(id=bulk_id, state=current).update(state=state)


async def record_created(messages: Sequence[Message]) -> list[Transition]:
    """First event of freshly inserted messages (caller's transaction); publish later."""
    ts = [
        Transition(
            message_id=m.id,
            company_id=m.company_id,
            candidate_id=m.candidate_id,
            bulk_operation_id=m.bulk_operation_id,
            previous=None,
            status=m.status,
            at=m.created_at or now(),
        )
        for m in messages
    ]
    await write_events(ts)
    return ts


async def publish_created(transitions: Sequence[Transition]) -> None:
    by_company: dict[uuid.UUID, list[tuple[str, dict[str, Any]]]] = {}
    for t in transitions:
        by_company.setdefault(t.company_id, []).append((events.MESSAGE_STATUS, t.event_payload()))
    for company_id, evs in by_company.items():
        await events.publish_many(company_id, evs)


async def publish_transitions(transitions: Sequence[Transition]) -> None:
    """Publish committed transitions (a claim's re-claims of an expired lease are history
    only: same status, nothing to publish)."""
    await publish([t for t in transitions if t.previous != t.status])

