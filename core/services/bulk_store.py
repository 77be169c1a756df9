"""Storing a bulk operation: its messages (COPY on PostgreSQL, bulk inserts elsewhere), their
attachments and first events, the rejected applications, in one transaction; then waking the
worker in chunks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from core import events, queue
from core.errors import FieldError, InputError
from core.models import (
    Application,
    BulkOperation,
    Company,
    Document,
    Employee,
    Interview,
    Message,
    RejectionReason,
)
from core.models.companies import MailSettings
from core.models.enums import ApplicationStatus, MessageStatus
from core.services import mail_settings, messaging, pacing, recording
from core.services.documents import StagedFile, create_documents

CHUNK = 100
WAKE_CONCURRENCY = 8
INSERT_BATCH = 2_000
MESSAGE_COLUMNS = [
    "id", "company_id", "candidate_id", "application_id", "interview_id", "bulk_operation_id",
    "sender_id", "subsidiary_id", "kind", "direction", "status", "from_name", "from_address", "to_addrs",
    "cc_addrs", "bcc_addrs", "subject", "body", "body_html", "ics", "ics_method",
    "rfc_message_id", "in_reply_to", "scheduled_at", "sent_at", "attempts", "next_attempt_at",
    "lease_until", "claim_token", "error", "idempotency_key", "created_at", "updated_at",
]


@dataclass
class Plan:
    """What a bulk mutation will store, computed before anything is written."""

    company: Company
    employee: Employee
    applications: list[Application]
    drafts: list[messaging.Draft] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)

async def link_attachments(message_ids: Sequence[uuid.UUID], docs: Sequence[Document]) -> None:
    if not docs or not message_ids:
        return
    conn = Tortoise.get_connection("default")
    pg = conn.capabilities.dialect == "postgres"
    sql = ("INSERT INTO message_attachment (message_id, document_id) VALUES ($1, $2)" if pg
           else "INSERT INTO message_attachment (message_id, document_id) VALUES (?, ?)")
    rows = [[m if pg else str(m), d.id if pg else str(d.id)] for m in message_ids for d in docs]
    for start in range(0, len(rows), INSERT_BATCH):
        await conn.execute_many(sql, rows[start:start + INSERT_BATCH])


Emit = Callable[[list[messaging.Draft]], Awaitable[None]]
# Renders a bulk's drafts into plan.drafts, handing them to `emit` in chunks when given;
# returns the errors naming the applications whose message could not be made.
Render = Callable[[Emit | None], Awaitable[list[FieldError]]]


async def insert_messages_pg(conn: Any, plan: Plan, render: Render | None = None
                             ) -> tuple[list[uuid.UUID], list[recording.Transition]]:
    """PostgreSQL: COPY the rows (and their first events) instead of building ORM objects,
    which is most of the cost for thousands of messages.

    With `render`, the drafts are rendered while PostgreSQL takes in those before them: one
    COPY per chunk, since a statement's foreign-key checks run at its end (10,000 rows took
    0.5 s of PostgreSQL's time, two thirds of it in those checks, after 0.35 s of rendering
    that waited for nothing). A draft that cannot be made raises InputError; the caller's
    transaction then keeps nothing."""
    at = recording.now()
    ids: list[uuid.UUID] = []
    transitions: list[recording.Transition] = []
    # Random (version 4) ids from one read of the system's random source, not one each
    # (enough for the drafts made and one per application).
    entropy = os.urandom(16 * (len(plan.drafts) + len(plan.applications)))

    def rows(drafts: Sequence[messaging.Draft]) -> list[tuple[Any, ...]]:
        out = []
        for d in drafts:
            n = 16 * len(ids)
            random = entropy[n:n + 16] if n + 16 <= len(entropy) else os.urandom(16)
            v = messaging.message_values(d, at, uuid.UUID(bytes=random, version=4))
            for k in ("to_addrs", "cc_addrs", "bcc_addrs"):
                v[k] = orjson.dumps(v[k]).decode() if v[k] else "[]"
            for k in ("kind", "direction", "status"):
                v[k] = v[k].value
            out.append(tuple(v[c] for c in MESSAGE_COLUMNS))
            ids.append(v["id"])
            transitions.append(recording.Transition(
                v["id"], v["company_id"], v["candidate_id"], v["bulk_operation_id"], None,
                MessageStatus(v["status"]), at))
        return out

    async def copy(drafts: Sequence[messaging.Draft]) -> None:
        first = len(transitions)
        await conn._connection.copy_records_to_table("message", records=rows(drafts),
                                                     columns=MESSAGE_COLUMNS)
        await recording.write_events(transitions[first:])

    if render is None:
        await copy(plan.drafts)
    else:
        if plan.drafts:  # made before (none for sendBulkEmail)
            await copy(plan.drafts)
        pending: asyncio.Future[None] | None = None

        async def emit(chunk: list[messaging.Draft]) -> None:
            nonlocal pending
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(copy(chunk))
            await asyncio.sleep(0)  # it starts; the next chunk is rendered meanwhile

        try:
            errors = await render(emit)
        finally:
            if pending is not None and not pending.done():
                with contextlib.suppress(Exception):  # a failure raised it already
                    await pending
        if errors:
            raise InputError(errors)
        if pending is not None:
            await pending
    return ids, transitions


def _servers(plan: Plan) -> dict[str, tuple[MailSettings, int]]:
    """The servers the drafts go through (the company's, subsidiaries') and how many each."""
    servers: dict[str, tuple[MailSettings, int]] = {}
    for d in plan.drafts:
        server = mail_settings.server_owner(d.company, d.subsidiary)
        n = servers.get(server.settings_key, (server, 0))[1]
        servers[server.settings_key] = (server, n + 1)
    return servers


async def _expected_completion(plan: Plan, bulk: BulkOperation) -> None:
    """When the last mail is expected to go, given the limits of each server."""
    ends = [await pacing.expected_end(server, n, bulk.scheduled_at)
            for server, n in _servers(plan).values()]
    bulk.expected_completion_at = max(  # type: ignore[assignment]
        (e for e in ends if e is not None), default=None)


async def store(plan: Plan, bulk: BulkOperation, *, new_files: Sequence[StagedFile],
                 reject: tuple[RejectionReason, str | None] | None,
                 anonymize_now: list[uuid.UUID],
                 cancel_interviews: Sequence[Interview] = (),
                 render: Render | None = None) -> list[uuid.UUID]:
    """Store what `plan` holds and, with `render`, the drafts it renders (on PostgreSQL
    while the rows go in); InputError, with nothing stored, when any cannot be made."""
    pg = Tortoise.get_connection("default").capabilities.dialect == "postgres"
    if render is not None and not pg:  # elsewhere every draft is rendered first
        errors = await render(None)
        if errors:
            raise InputError(errors)
        render = None
    # Drafts made elsewhere (an anonymisation's interview CANCELs) go under their
    # position's subsidiary too; the bulk's own drafts already know theirs.
    await messaging.resolve_owners(plan.drafts)
    if render is None:
        await _expected_completion(plan, bulk)
    async with in_transaction() as conn:
        await bulk.save(force_create=True)
        for iv in cancel_interviews:
            await Interview.filter(id=iv.id).update(cancelled=True, sequence=iv.sequence)
        if pg:
            ids, transitions = await insert_messages_pg(conn, plan, render)
        else:
            messages = [messaging.new_message(d) for d in plan.drafts]
            for start in range(0, len(messages), INSERT_BATCH):
                await Message.bulk_create(messages[start:start + INSERT_BATCH])
            transitions = await recording.record_created(messages)
            ids = [m.id for m in messages]
        if render is not None:  # every draft is known now
            await _expected_completion(plan, bulk)
            if bulk.expected_completion_at is not None:
                await BulkOperation.filter(id=bulk.id).update(
                    expected_completion_at=bulk.expected_completion_at)
        if new_files:
            plan.documents = [*plan.documents, *await create_documents(
                new_files, company_id=plan.company.id, candidate_id=None,
                uploaded_by=plan.employee.id)]
        await link_attachments(ids, plan.documents)
        if reject is not None:
            reason, note = reject
            app_ids = [a.id for a in plan.applications]
            for start in range(0, len(app_ids), 5000):
                await Application.filter(id__in=app_ids[start:start + 5000]).update(
                    status=ApplicationStatus.REJECTED, rejection_reason_id=reason.id,
                    rejection_note=note, rejected_at=recording.now())
    await recording.publish_created(transitions)
    if anonymize_now:
        from core.services.anonymize import anonymize_candidates

        await anonymize_candidates(anonymize_now, company_id=plan.company.id)
    await wake(bulk, ids)
    await events.publish(plan.company.id, events.BULK_PROGRESS, bulk_operation_id=bulk.id)
    return ids


async def wake(bulk: BulkOperation, message_ids: Sequence[uuid.UUID]) -> None:
    """Enqueue the operation's messages in chunks (one job per chunk)."""
    ids = list(message_ids)
    chunks = [(k, ids[start:start + CHUNK]) for k, start in enumerate(range(0, len(ids), CHUNK))]
    # A few enqueues at a time (each is a Redis transaction): the first chunks reach the
    # workers while the rest are still being enqueued, in order.
    for group in range(0, len(chunks), WAKE_CONCURRENCY):
        await asyncio.gather(*(queue.enqueue_batch(f"{bulk.id}:{k}", chunk, at=bulk.scheduled_at)
                               for k, chunk in chunks[group:group + WAKE_CONCURRENCY]))
