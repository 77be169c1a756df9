"""Message life after creation: the only place that changes a message's status.

Every transition is one conditional UPDATE (so two workers can never both win), writes a
MessageEvent in the same transaction, and is published after the commit, in that order.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from tortoise import connections
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from core import events
from core.models import BulkOperation, Message, MessageEvent
from core.models.enums import BulkOperationState, MessageKind, MessageStatus
from core.settings import get_settings

log = logging.getLogger(__name__)

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


async def _record(transitions: Sequence[Transition]) -> None:
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


async def _publish(transitions: Sequence[Transition]) -> None:
    by_company: dict[uuid.UUID, list[tuple[str, dict[str, Any]]]] = {}
    bulk_ids: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for t in transitions:
        by_company.setdefault(t.company_id, []).append((events.MESSAGE_STATUS, t.event_payload()))
        if t.bulk_operation_id:
            bulk_ids.add((t.company_id, t.bulk_operation_id))
    for company_id, evs in by_company.items():
        await events.publish_many(company_id, evs)
    for company_id, bulk_id in bulk_ids:
        await refresh_bulk_state(bulk_id)
        await events.publish(company_id, events.BULK_PROGRESS, bulk_operation_id=bulk_id)


async def refresh_bulk_state(bulk_id: uuid.UUID) -> None:
    """Move a running bulk operation to COMPLETED(_WITH_ERRORS) once nothing is pending."""
    bulk = await BulkOperation.get_or_none(id=bulk_id)
    if bulk is None or bulk.state in (BulkOperationState.CANCELLED,):
        return
    if bulk.queued <= 0 and bulk.state in (BulkOperationState.RUNNING, BulkOperationState.SCHEDULED):
        pending = await Message.filter(
            bulk_operation_id=bulk_id, status__in=[S.QUEUED, S.SENDING, S.SCHEDULED]
        ).exists()
        if not pending:
            if bulk.failed:
                state = BulkOperationState.COMPLETED_WITH_ERRORS
            elif bulk.sent == 0 and bulk.total > 0:
                state = BulkOperationState.CANCELLED  # every message was cancelled
            else:
                state = BulkOperationState.COMPLETED
            await BulkOperation.filter(id=bulk_id, state=bulk.state).update(state=state)


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
        await _record([t])
    await _publish([t])
    await msg.refresh_from_db()
    return msg


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
        await _record(transitions)
    await _publish(transitions)
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


# --- chunked transitions (bulk sending) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What the worker needs of a claimed message to build and send it (read without
    building ORM objects: for a chunk that was a tenth of the worker's CPU)."""

    id: uuid.UUID
    company_id: uuid.UUID
    candidate_id: uuid.UUID
    bulk_operation_id: uuid.UUID | None
    subsidiary_id: uuid.UUID | None
    kind: MessageKind
    from_name: str
    from_address: str
    to_addrs: list[str]
    cc_addrs: list[str]
    bcc_addrs: list[str]
    subject: str
    body: str
    body_html: str | None
    ics: str | None
    ics_method: str | None
    rfc_message_id: str
    in_reply_to: str | None
    created_at: datetime


OUTGOING_FIELDS = tuple(Outgoing.__dataclass_fields__)


# PostgreSQL: the claim and the rows it took in one statement (the status before the
# claim comes from the statement's snapshot; it only words the event of a lease that
# expired). The status tests are CASE expressions so that no plan can start from the
# status index: right after a bulk insert the statistics still say "few queued", and a
# plan scanning every queued message per chunk took 111 ms instead of 3. SQLite takes the
# ORM path below.
_CLAIMABLE = ("CASE m.status WHEN 'QUEUED' THEN m.next_attempt_at IS NULL"
              " OR m.next_attempt_at <= $4 WHEN 'SENDING' THEN m.lease_until < $4"
              " ELSE false END")
_CLAIM_PG = (
    "UPDATE message AS m SET status = 'SENDING', lease_until = $2, attempts = m.attempts + 1,"
    " claim_token = $3, updated_at = $4"
    " FROM (SELECT id, status FROM message WHERE id = ANY($1::uuid[])) AS old"
    f" WHERE m.id = old.id AND {_CLAIMABLE}"
    " RETURNING old.status AS previous, " + ", ".join(f"m.{f}" for f in OUTGOING_FIELDS))
_MARK_SENT_PG = (
    "UPDATE message SET status = 'SENT', sent_at = $2, lease_until = NULL, error = NULL,"
    " updated_at = $2 WHERE id = ANY($1::uuid[])"
    " AND CASE status WHEN 'SENDING' THEN claim_token = $3 ELSE false END"
    " RETURNING id, company_id, candidate_id, bulk_operation_id")
_LEASE_EXPIRED = "lease expired; sending again with the same Message-ID"

# The worker's per-mail writes on PostgreSQL: each one statement (its own transaction, one
# round trip) that changes the rows, writes their events and, for SENT, moves the bulk
# counters. A claim (QUEUED or SENDING → SENDING) changes no counter.
_CLAIM_ONE_STATEMENT_PG = (
    "WITH c AS (" + _CLAIM_PG + ")"
    ", e AS (INSERT INTO message_event (message_id, status, previous_status, at, detail)"
    " SELECT c.id, 'SENDING', c.previous, $4, CASE WHEN c.previous = 'SENDING'"
    f" THEN '{_LEASE_EXPIRED}' END FROM c)"
    " SELECT * FROM c")
_SENT_ONE_STATEMENT_PG = (
    "WITH s AS (" + _MARK_SENT_PG + ")"
    ", e AS (INSERT INTO message_event (message_id, status, previous_status, at, detail)"
    " SELECT s.id, 'SENT', 'SENDING', $2, d.detail"
    " FROM s JOIN unnest($1::uuid[], $4::text[]) AS d(id, detail) ON d.id = s.id)"
    ", b AS (UPDATE bulk_operation AS b SET queued = b.queued - c.n, sent = b.sent + c.n"
    " FROM (SELECT bulk_operation_id, count(*) AS n FROM s"
    " WHERE bulk_operation_id IS NOT NULL GROUP BY bulk_operation_id) AS c"
    " WHERE b.id = c.bulk_operation_id)"
    " SELECT * FROM s")


def _json_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else orjson.loads(value)


def _outgoing_pg(row: dict[str, Any]) -> Outgoing:
    return Outgoing(**{**{f: row[f] for f in OUTGOING_FIELDS}, "kind": MessageKind(row["kind"]),
                       "to_addrs": _json_list(row["to_addrs"]),
                       "cc_addrs": _json_list(row["cc_addrs"]),
                       "bcc_addrs": _json_list(row["bcc_addrs"])})


async def claim_many(message_ids: Sequence[uuid.UUID], token: str | None = None, *,
                     publish: bool = True) -> tuple[str, list[Outgoing], list[Transition]]:
    """Claim every claimable message of `message_ids` with one UPDATE; returns
    (token, claimed, transitions). A worker passes its own token (one per process), which
    its heartbeat uses to renew the leases of everything it holds. Due scheduled messages
    of an operation are released (for the whole operation) and claimed too. With
    publish=False the caller publishes the transitions (after it has woken its waiters)."""
    token = token or uuid.uuid4().hex
    ids = list(message_ids)
    claimed, transitions = await _claim(ids, token)
    if len(claimed) < len(ids):
        taken = {m.id for m in claimed}
        rest = [i for i in ids if i not in taken]
        if await release_due_bulk(rest):
            more, more_t = await _claim(rest, token)
            claimed += more
            transitions += more_t
    if publish:
        await publish_transitions(transitions)
    return token, claimed, transitions


async def publish_transitions(transitions: Sequence[Transition]) -> None:
    """Publish committed transitions (a claim's re-claims of an expired lease are history
    only: same status, nothing to publish)."""
    await _publish([t for t in transitions if t.previous != t.status])


async def renew_leases(token: str, message_ids: Sequence[uuid.UUID]) -> int:
    """Heartbeat: push forward the lease of those of `message_ids` still SENDING under
    `token` (a message another worker took over is not touched)."""
    if not message_ids:
        return 0
    at = now()
    return await Message.filter(id__in=list(message_ids), claim_token=token,
                                status=S.SENDING).update(
        lease_until=at + timedelta(seconds=get_settings().lease_seconds))


async def _claim(ids: list[uuid.UUID], token: str) -> tuple[list[Outgoing], list[Transition]]:
    at = now()
    lease = at + timedelta(seconds=get_settings().lease_seconds)
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(_CLAIM_ONE_STATEMENT_PG, [ids, lease, token, at])
        return [_outgoing_pg(r) for r in rows], [
            Transition(r["id"], r["company_id"], r["candidate_id"], r["bulk_operation_id"],
                       S(r["previous"]), S.SENDING, at,
                       _LEASE_EXPIRED if r["previous"] == S.SENDING else None)
            for r in rows]
    async with in_transaction():  # SQLite: the ORM
        before = dict(await Message.filter(id__in=ids).values_list("id", "status"))  # type: ignore[arg-type]
        await Message.filter(
            Q(id__in=ids)
            & (
                (Q(status=S.QUEUED)
                 & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=at)))
                | (Q(status=S.SENDING) & Q(lease_until__lt=at))
            )
        ).update(status=S.SENDING, lease_until=lease, attempts=F("attempts") + 1,
                 claim_token=token, updated_at=at)
        # This claim's rows only (the token is the process's: it may hold others).
        claimed = [Outgoing(**row) for row in await Message.filter(
            id__in=ids, claim_token=token, status=S.SENDING, updated_at=at,
            lease_until=lease).values(*OUTGOING_FIELDS)]
        transitions = [
            Transition(m.id, m.company_id, m.candidate_id, m.bulk_operation_id,
                       before.get(m.id), S.SENDING, at,
                       _LEASE_EXPIRED if before.get(m.id) == S.SENDING else None)
            for m in claimed
        ]
        await _record(transitions)
    return claimed, transitions


async def mark_sent_many(token: str, sent: Sequence[tuple[uuid.UUID, str]], *,
                         publish: bool = True) -> list[Transition]:
    """SENDING → SENT in one UPDATE guarded by the claim token; returns the transitions
    made (a message whose claim was taken over by another worker is not among them)."""
    if not sent:
        return []
    at = now()
    ids = [mid for mid, _ in sent]
    details = dict(sent)
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows_pg = await conn.execute_query_dict(
            _SENT_ONE_STATEMENT_PG, [ids, at, token, [details[i] for i in ids]])
        transitions = [Transition(r["id"], r["company_id"], r["candidate_id"],
                                  r["bulk_operation_id"], S.SENDING, S.SENT, at,
                                  details.get(r["id"]))
                       for r in rows_pg]
        if publish:
            await _publish(transitions)
        return transitions
    async with in_transaction():  # SQLite: the ORM
        rows: list[tuple[Any, Any, Any, Any]] = await Message.filter(
            id__in=ids, status=S.SENDING, claim_token=token).values_list(
            "id", "company_id", "candidate_id", "bulk_operation_id")  # type: ignore[assignment]
        await Message.filter(id__in=[r[0] for r in rows], status=S.SENDING,
                             claim_token=token).update(
            status=S.SENT, sent_at=at, lease_until=None, error=None, updated_at=at)
        transitions = [
            Transition(mid, company_id, candidate_id, bulk_id, S.SENDING, S.SENT,
                       at, details.get(mid))
            for mid, company_id, candidate_id, bulk_id in rows
        ]
        await _record(transitions)
    if publish:
        await _publish(transitions)
    return transitions


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
            await _record(transitions)
        await _publish(transitions)
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
        await _record(transitions)
    await _publish(transitions)
    return True


async def release_claims(message_ids: Sequence[uuid.UUID], *, reason: str) -> int:
    """SENDING → QUEUED (due now) for messages a stopping worker will not finish."""
    if not message_ids:
        return 0
    at = now()
    async with in_transaction():
        rows = await Message.filter(id__in=list(message_ids), status=S.SENDING)
        await Message.filter(id__in=[m.id for m in rows], status=S.SENDING).update(
            status=S.QUEUED, lease_until=None, next_attempt_at=None, updated_at=at)
        transitions = [Transition(m.id, m.company_id, m.candidate_id, m.bulk_operation_id,
                                  S.SENDING, S.QUEUED, at, reason) for m in rows]
        await _record(transitions)
    await _publish(transitions)
    return len(transitions)


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
