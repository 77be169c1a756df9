"""Message life after creation, one message (or one bulk operation's schedule) at a time:
the named transitions of a message's status.

Every transition is one conditional UPDATE (so two workers can never both win), writes a
MessageEvent in the same transaction (core.services.recording), and is published after
the commit, in that order. A worker's grouped claims and SENT writes are in
core.services.claims.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from core.models import BulkOperation, Message, MessageEvent
from core.models.enums import BulkOperationState, MessageStatus
from core.services.recording import Transition, now, publish, record
from core.settings import get_settings

log = logging.getLogger(__name__)

S = MessageStatus

async def transition_one(
    message_id: uuid.UUID,
    *,
    allowed_from: Iterable[MessageStatus],
    to: MessageStatus,
    detail: str | None = None,
    extra_filter: Q | None = None,
    **updates: Any,
) -> Message | None:
    """Move one message to `to` if it is in one of `allowed_from`; None when it was not."""
    allowed = list(allowed_from)
    at = now()
    async with in_transaction():
        msg = await Message.get_or_none(id=message_id)
        if msg is None or msg.status not in allowed:
            return None
        query = Message.filter(id=message_id, status=msg.status)
        if extra_filter is not None:
            query = query.filter(extra_filter)
        changed = await query.update(status=to, updated_at=at, **updates)
        if changed != 1:
            return None
        t = Transition(
            message_id=msg.id,
            company_id=msg.company_id,
            candidate_id=msg.candidate_id,
            bulk_operation_id=msg.bulk_operation_id,
            previous=msg.status,
            status=to,
            at=at,
            detail=detail,
        )
        await record([t])
    await publish([t])
    await msg.refresh_from_db()
    return msg

# --- the named transitions ---------------------------------------------------------


async def release_if_due(message_id: uuid.UUID) -> Message | None:
    """SCHEDULED → QUEUED once scheduled_at has come."""
    return await transition_one(
        message_id,
        allowed_from=[S.SCHEDULED],
        to=S.QUEUED,
        extra_filter=Q(scheduled_at__lte=now()),
        detail="scheduled time reached",
    )


async def claim(message_id: uuid.UUID) -> Message | None:
    """QUEUED (due) → SENDING with a lease, or re-claim a SENDING whose lease ran out."""
    s = get_settings()
    at = now()
    lease = at + timedelta(seconds=s.lease_seconds)
    async with in_transaction():
        msg = await Message.get_or_none(id=message_id)
        if msg is None:
            return None
        if msg.status == S.QUEUED:
            cond = Q(status=S.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=at))
            detail = None
        elif msg.status == S.SENDING:
            cond = Q(status=S.SENDING) & Q(lease_until__lt=at)
            detail = "lease expired; sending again with the same Message-ID"
        else:
            return None
        changed = await Message.filter(Q(id=message_id) & cond).update(
            status=S.SENDING,
            lease_until=lease,
            attempts=F("attempts") + 1,
            updated_at=at,
        )
        if changed != 1:
            return None
        transitions = []
        if msg.status != S.SENDING:
            transitions.append(
                Transition(msg.id, msg.company_id, msg.candidate_id, msg.bulk_operation_id,
                           msg.status, S.SENDING, at, detail)
            )
        else:
            # Same status: record the re-claim in the history, no status change to publish.
            await MessageEvent.create(
                message_id=msg.id, status=S.SENDING, previous_status=S.SENDING, at=at,
                detail=detail,
            )
        await record(transitions)
    await publish(transitions)
    await msg.refresh_from_db()
    return msg


async def mark_sent(message_id: uuid.UUID, *, detail: str | None = None) -> Message | None:
    at = now()
    return await transition_one(
        message_id, allowed_from=[S.SENDING], to=S.SENT, detail=detail,
        sent_at=at, lease_until=None, error=None,
    )


def backoff_seconds(attempts: int) -> float:
    base = get_settings().retry_base_seconds
    return float(min(base * (2 ** max(attempts - 1, 0)), 3600.0))


async def mark_retry(message_id: uuid.UUID, *, error: str) -> Message | None:
    """A temporary failure: back to QUEUED with backoff, or FAILED when attempts ran out."""
    msg = await Message.get_or_none(id=message_id)
    if msg is None or msg.status != S.SENDING:
        return None
    if msg.attempts >= get_settings().max_attempts:
        return await mark_failed(
            message_id, error=f"{error} (gave up after {msg.attempts} attempts)"
        )
    next_at = now() + timedelta(seconds=backoff_seconds(msg.attempts))
    return await transition_one(
        message_id, allowed_from=[S.SENDING], to=S.QUEUED,
        detail=f"temporary failure, retrying at {next_at.isoformat(timespec='seconds')}: {error}",
        next_attempt_at=next_at, lease_until=None, error=error,
    )


async def mark_failed(message_id: uuid.UUID, *, error: str) -> Message | None:
    return await transition_one(
        message_id, allowed_from=[S.SENDING, S.QUEUED], to=S.FAILED, detail=error,
        error=error, lease_until=None, next_attempt_at=None,
    )


async def mark_bounced(message_id: uuid.UUID, *, reason: str) -> Message | None:
    return await transition_one(
        message_id, allowed_from=[S.SENT, S.SENDING], to=S.BOUNCED, detail=reason, error=reason
    )


async def requeue_failed(message_id: uuid.UUID) -> Message | None:
    """retryMessage: FAILED or BOUNCED → QUEUED, due now."""
    return await transition_one(
        message_id, allowed_from=[S.FAILED, S.BOUNCED], to=S.QUEUED, detail="retry requested",
        next_attempt_at=None, lease_until=None,
    )


async def cancel_scheduled(message_id: uuid.UUID) -> Message | None:
    return await transition_one(
        message_id, allowed_from=[S.SCHEDULED], to=S.CANCELLED, detail="cancelled"
    )


# --- scheduled bulk operations ------------------------------------------------------------


async def release_due_bulk(message_ids: Sequence[uuid.UUID]) -> int:
    """Due SCHEDULED bulk messages go QUEUED for their whole operation at once, guarded by
    the operation's SCHEDULED → RUNNING switch, so a cancel either wins for all or for none."""
    at = now()
    bulk_ids = set(await Message.filter(
        id__in=list(message_ids), status=S.SCHEDULED, scheduled_at__lte=at,
        bulk_operation_id__isnull=False,
    ).values_list("bulk_operation_id", flat=True))  # type: ignore[arg-type]
    released = 0
    for bulk_id in bulk_ids:
        async with in_transaction():
            await BulkOperation.filter(id=bulk_id, state=BulkOperationState.SCHEDULED).update(
                state=BulkOperationState.RUNNING)
            bulk = await BulkOperation.get(id=bulk_id)
            if bulk.state != BulkOperationState.RUNNING:
                continue
            rows = await Message.filter(bulk_operation_id=bulk_id, status=S.SCHEDULED,
                                        scheduled_at__lte=at)
            await Message.filter(id__in=[m.id for m in rows], status=S.SCHEDULED).update(
                status=S.QUEUED, updated_at=at)
            transitions = [Transition(m.id, m.company_id, m.candidate_id, m.bulk_operation_id,
                                      S.SCHEDULED, S.QUEUED, at, "scheduled time reached") for m in rows]
            await record(transitions)
        await publish(transitions)
        released += len(transitions)
    return released


async def cancel_bulk(bulk_id: uuid.UUID) -> bool:
    """SCHEDULED operation → CANCELLED with all its scheduled messages; False if it started."""
    at = now()
    async with in_transaction():
        won = await BulkOperation.filter(id=bulk_id, state=BulkOperationState.SCHEDULED).update(
            state=BulkOperationState.CANCELLED)
        if not won:
            return False
        rows = await Message.filter(bulk_operation_id=bulk_id, status=S.SCHEDULED)
        await Message.filter(id__in=[m.id for m in rows], status=S.SCHEDULED).update(
            status=S.CANCELLED, updated_at=at)
        transitions = [Transition(m.id, m.company_id, m.candidate_id, bulk_id, S.SCHEDULED,
                                  S.CANCELLED, at, "operation cancelled") for m in rows]
        await record(transitions)
    await publish(transitions)
    return True


# --- held back by a company server's limits (core.services.pacing, worker/paced.py) ------


async def hold_queued(message_id: uuid.UUID, at: datetime, *, detail: str) -> bool:
    """A QUEUED message waits for its server's limits: it goes at `at`
    (Message.expectedSendAt); history only, its status does not change."""
    async with in_transaction():
        changed = await Message.filter(id=message_id, status=S.QUEUED).update(
            next_attempt_at=at, expected_send_at=at, updated_at=now())
        if changed:
            await MessageEvent.create(message_id=message_id, status=S.QUEUED,
                                      previous_status=S.QUEUED, at=now(), detail=detail)
    return bool(changed)


async def mark_paced(message_id: uuid.UUID, at: datetime, *, detail: str) -> Message | None:
    """SENDING → QUEUED until `at`: the server asked to slow down. Not one of the message's
    attempts (the claim's count is taken back), not its error."""
    return await transition_one(
        message_id, allowed_from=[S.SENDING], to=S.QUEUED, detail=detail,
        next_attempt_at=at, expected_send_at=at, lease_until=None,
        attempts=F("attempts") - 1)


async def push_bulk_completion(bulk_id: uuid.UUID, at: datetime) -> None:
    """BulkOperation.expectedCompletionAt moves to `at` when that is later."""
    await BulkOperation.filter(
        Q(id=bulk_id) & (Q(expected_completion_at__isnull=True)
                         | Q(expected_completion_at__lt=at))).update(expected_completion_at=at)
