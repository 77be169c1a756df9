"""A worker's claims on the messages it sends and what it records of them in groups: the
claim (QUEUED or expired SENDING → SENDING under the worker's token and a lease), the
lease renewal, SENDING → SENT, and the release of claims a stopping worker will not send.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from core.db import hot_connection
from core.models import Message
from core.models.enums import MessageKind, MessageStatus
from core.services import recording
from core.services.delivery import release_due_bulk
from core.services.recording import Transition, now, publish_transitions, record
from core.settings import get_settings

S = MessageStatus


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
def _claim_events(name: str, at: str) -> str:
    """CTE `name`: the SENDING events of the claimed rows `c`, at parameter `at`."""
    return (", " + name + " AS (INSERT INTO message_event (message_id, status, previous_status, at,"
            " detail) SELECT c.id, 'SENDING', c.previous, " + at + ", CASE WHEN c.previous"
            f" = 'SENDING' THEN '{_LEASE_EXPIRED}' END FROM c)")


# SENT rows `s`, their events and the bulk counters they move: $1 the ids, $2 the time,
# $3 the token, $4 the details.
_SENT_CTES = (
    "WITH s AS (" + _MARK_SENT_PG + ")"
    ", e AS (INSERT INTO message_event (message_id, status, previous_status, at, detail)"
    " SELECT s.id, 'SENT', 'SENDING', $2, d.detail"
    " FROM s JOIN unnest($1::uuid[], $4::text[]) AS d(id, detail) ON d.id = s.id)"
    ", b AS (UPDATE bulk_operation AS b SET queued = b.queued - c.n, sent = b.sent + c.n"
    " FROM (SELECT bulk_operation_id, count(*) AS n FROM s"
    " WHERE bulk_operation_id IS NOT NULL GROUP BY bulk_operation_id) AS c"
    " WHERE b.id = c.bulk_operation_id)")
_CLAIM_ONE_STATEMENT_PG = ("WITH c AS (" + _CLAIM_PG + ")"
                           + _claim_events("e", "$4") + " SELECT * FROM c")
_SENT_ONE_STATEMENT_PG = _SENT_CTES + " SELECT * FROM s"


def _renumber(sql: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():  # via placeholders: $1 → $5 must not then become $6
        sql = sql.replace(old, "{" + new + "}")
    for new in mapping.values():
        sql = sql.replace("{" + new + "}", new)
    return sql


# A lane hands over the SENT of its mail and asks for the message it sends next at the same
# moment: both go in one statement (one round trip, one commit). $1 the SENT ids, $2 the
# time of both, $3 the token, $4 the SENT details, $5 the ids to claim, $6 the lease. The
# rows come back as one result: kind 'C' with the claimed message, kind 'S' with the id
# and ownership of a message now SENT.
_FILLER = ", ".join("NULL" for _ in OUTGOING_FIELDS[4:])
_SENT_AND_CLAIM_PG = (
    _SENT_CTES
    + ", c AS (" + _renumber(_CLAIM_PG, {"$1": "$5", "$2": "$6", "$4": "$2"}) + ")"
    + _claim_events("ce", "$2")
    + " SELECT 'C' AS kind_of_row, c.* FROM c"
    " UNION ALL SELECT 'S', NULL, s.id, s.company_id, s.candidate_id, s.bulk_operation_id, "
    + _FILLER + " FROM s")

def _json_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else orjson.loads(value)


def _outgoing_pg(row: dict[str, Any]) -> Outgoing:
    return Outgoing(**{**{f: row[f] for f in OUTGOING_FIELDS}, "kind": MessageKind(row["kind"]),
                       "to_addrs": _json_list(row["to_addrs"]),
                       "cc_addrs": _json_list(row["cc_addrs"]),
                       "bcc_addrs": _json_list(row["bcc_addrs"])})


def _claim_transition_pg(r: dict[str, Any], at: datetime) -> Transition:
    """The transition of a row claimed by one of the PostgreSQL statements."""
    return Transition(r["id"], r["company_id"], r["candidate_id"], r["bulk_operation_id"],
                      S(r["previous"]), S.SENDING, at,
                      _LEASE_EXPIRED if r["previous"] == S.SENDING else None)


async def _claim_due_scheduled(ids: list[uuid.UUID], claimed: list[Outgoing], token: str
                               ) -> tuple[list[Outgoing], list[Transition]]:
    """Of `ids` not claimed: due scheduled messages of an operation, released (for the
    whole operation) and claimed."""
    if len(claimed) == len(ids):
        return [], []
    taken = {m.id for m in claimed}
    rest = [i for i in ids if i not in taken]
    if not await release_due_bulk(rest):
        return [], []
    return await _claim(rest, token)


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
    more, more_t = await _claim_due_scheduled(ids, claimed, token)
    claimed += more
    transitions += more_t
    if publish:
        await publish_transitions(transitions)
    return token, claimed, transitions



async def sent_and_claim(token: str, sent: Sequence[tuple[uuid.UUID, str]],
                         claim_ids: Sequence[uuid.UUID]
                         ) -> tuple[list[Transition], list[Outgoing], list[Transition]]:
    """mark_sent_many(sent) and claim_many(claim_ids) together, in one statement on
    PostgreSQL when there are both; returns (SENT transitions, claimed, claim transitions),
    nothing published (the caller does)."""
    ids = list(claim_ids)
    conn = hot_connection()
    if not sent or not ids or conn.capabilities.dialect != "postgres":
        only_sent = await mark_sent_many(token, sent, publish=False) if sent else []
        if not ids:
            return only_sent, [], []
        _, only_claimed, only_claim_t = await claim_many(ids, token, publish=False)
        return only_sent, only_claimed, only_claim_t
    at = now()
    lease = at + timedelta(seconds=get_settings().lease_seconds)
    sent_ids = [mid for mid, _ in sent]
    details = dict(sent)
    rows = await conn.execute_query_dict(
        _SENT_AND_CLAIM_PG, [sent_ids, at, token, [details[i] for i in sent_ids], ids, lease])
    sent_t: list[Transition] = []
    claimed: list[Outgoing] = []
    claim_t: list[Transition] = []
    for r in rows:
        if r["kind_of_row"] == "S":
            sent_t.append(Transition(r["id"], r["company_id"], r["candidate_id"],
                                     r["bulk_operation_id"], S.SENDING, S.SENT, at,
                                     details.get(r["id"])))
            continue
        claimed.append(_outgoing_pg(r))
        claim_t.append(_claim_transition_pg(r, at))
    more, more_t = await _claim_due_scheduled(ids, claimed, token)
    return sent_t, claimed + more, claim_t + more_t

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
    conn = hot_connection()
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(_CLAIM_ONE_STATEMENT_PG, [ids, lease, token, at])
        return [_outgoing_pg(r) for r in rows], [_claim_transition_pg(r, at) for r in rows]
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
        await record(transitions)
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
    conn = hot_connection()
    if conn.capabilities.dialect == "postgres":
        rows_pg = await conn.execute_query_dict(
            _SENT_ONE_STATEMENT_PG, [ids, at, token, [details[i] for i in ids]])
        transitions = [Transition(r["id"], r["company_id"], r["candidate_id"],
                                  r["bulk_operation_id"], S.SENDING, S.SENT, at,
                                  details.get(r["id"]))
                       for r in rows_pg]
        if publish:
            await recording.publish(transitions)
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
        await record(transitions)
    if publish:
        await recording.publish(transitions)
    return transitions


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
        await record(transitions)
    await recording.publish(transitions)
    return len(transitions)

