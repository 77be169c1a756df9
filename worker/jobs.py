"""arq jobs: send one message, send a batch, and the sweeper that re-wakes lost work."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from arq import Retry
from tortoise.expressions import Q

from core import logs, queue
from core.blobs import read_blob
from core.mail.mime import Attachment, build_email, plain_envelope
from core.models import Company, Document, Message
from core.models.companies import MailSettings
from core.models.enums import MessageStatus
from core.services import claims, delivery, mail_settings, recording
from worker import paced
from worker.lanes import NOT_HANDLED, Outbox, Work
from worker.smtp_answers import Outcome, SendResult
from worker.smtp_dialogue import Announce
from worker.transport import Gate, Transport, plain_addresses, target_for

log = logging.getLogger(__name__)
S = MessageStatus

SWEEP_LIMIT = 5000
SWEEP_CHUNK = 100


def _defer_seconds(until: Any) -> float:
    return max((until - recording.now()).total_seconds(), 0.05)


async def deliver(ctx: dict[str, Any], message_id: uuid.UUID) -> MessageStatus | None:
    """Claim, send and record one message. Raises Retry when it must wait."""
    msg = await Message.get_or_none(id=message_id)
    if msg is None:
        return None
    now = recording.now()
    if msg.status == S.SCHEDULED:
        if msg.scheduled_at and msg.scheduled_at > now:
            raise Retry(defer=_defer_seconds(msg.scheduled_at))
        if msg.bulk_operation_id is not None:
            # The whole operation goes at once (or not, when it was cancelled).
            await delivery.release_due_bulk([msg.id])
            await msg.refresh_from_db()
            if msg.status != S.QUEUED:
                return msg.status
        elif await delivery.release_if_due(msg.id) is None:
            return None
    elif msg.status == S.QUEUED and msg.next_attempt_at and msg.next_attempt_at > now:
        raise Retry(defer=_defer_seconds(msg.next_attempt_at))
    elif msg.status == S.SENDING and msg.lease_until and msg.lease_until > now:
        raise Retry(defer=_defer_seconds(msg.lease_until) + 0.5)
    elif msg.status not in (S.QUEUED, S.SENDING):
        return msg.status

    done = await send_each(ctx, [message_id])
    if message_id not in done:  # the worker is stopping: another one will send it
        await queue.enqueue_batch(f"rest:{uuid.uuid4().hex}", [message_id])
        return None
    status, retry_at = done[message_id]
    if status == S.QUEUED and retry_at is not None:
        raise Retry(defer=_defer_seconds(retry_at))
    return status


async def _attachments_of(message_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Document]]:
    """The attached documents of a chunk's messages (one join; most chunks have none)."""
    pairs = await Message.filter(id__in=message_ids, attachments__id__isnull=False).values_list(
        "id", "attachments__id")
    if not pairs:
        return {}
    docs = {d.id: d for d in await Document.filter(id__in=list({d for _, d in pairs}))}
    out: dict[uuid.UUID, list[Document]] = {}
    for mid, did in pairs:
        out.setdefault(mid, []).append(docs[did])
    return out


async def _send(ctx: dict[str, Any], msg: Message | claims.Outgoing, server: MailSettings,
                docs: list[Document], blobs: dict[str, bytes], *,
                in_slot: bool = False, before_data: Gate = None) -> SendResult:
    """Build the mail of a claimed message and hand it to its SMTP server."""
    try:
        attachments = []
        for d in docs:
            if d.blob_key not in blobs:
                blobs[d.blob_key] = read_blob(d.blob_key)
            attachments.append(Attachment(d.filename, d.content_type, blobs[d.blob_key]))
    except OSError as exc:
        return SendResult(Outcome.PERMANENT, f"an attachment could not be read: {exc}")
    envelope = build_email(msg, attachments)
    transport: Transport = ctx["transport"]
    target = target_for(server)
    result = await transport.send(target, envelope, primary=msg.to_addrs, in_slot=in_slot,
                                  before_data=before_data)
    return await paced.after_send(server, target, result)


async def _record_failure(msg: Message | claims.Outgoing,
                          result: SendResult) -> Message | None:
    if result.outcome == Outcome.THROTTLED:
        return await paced.record_throttled(msg.id, result)
    if result.outcome == Outcome.PERMANENT:
        return await delivery.mark_failed(msg.id, error=result.detail)
    return await delivery.mark_retry(msg.id, error=result.detail)


async def send_message(ctx: dict[str, Any], message_id: str) -> str | None:
    token = logs.message_id.set(message_id)
    try:
        status = await deliver(ctx, uuid.UUID(message_id))
        if status is not None:
            log.info("message %s", status.value)
        return status.value if status else None
    finally:
        logs.message_id.reset(token)


async def send_batch(ctx: dict[str, Any], message_ids: list[str]) -> int:
    """Send a chunk over the pooled connections, each mail claimed when a connection is
    free for it. Messages that must wait (backoff, another worker's lease) get their own
    job; those left when the worker is stopping go back to the queue as a new chunk."""
    ids = [uuid.UUID(m) for m in message_ids]
    done = await send_each(ctx, ids)
    rest = [mid for mid in ids if mid not in done]
    if rest:
        await queue.enqueue_batch(f"rest:{uuid.uuid4().hex}", rest)
    for mid, (status, retry_at) in done.items():
        if status == S.QUEUED:
            await queue.enqueue_send(mid, at=retry_at)  # a no-op for one already waiting
    return sum(1 for status, _ in done.values() if status == S.SENT)


Done = dict[uuid.UUID, tuple[MessageStatus | None, Any]]


async def send_each(ctx: dict[str, Any], ids: list[uuid.UUID]) -> Done:
    """Send each due message of `ids`, in order, as connections to its server free up.

    Returns, per message handled, its status afterwards and, when it is QUEUED, the time of
    its next attempt (a message that is not due, or held by another worker's live lease,
    comes back QUEUED/SENDING with that time). Messages missing from the answer were not
    touched because the worker is stopping.
    """
    outbox: Outbox = ctx["outbox"]
    at = recording.now()
    done: Done = {}
    rows = await Message.filter(id__in=ids).values(
        "id", "company_id", "subsidiary_id", "status", "next_attempt_at", "lease_until",
        "scheduled_at", "bulk_operation_id")
    if any(r["status"] == S.SCHEDULED and r["scheduled_at"] and r["scheduled_at"] <= at
           for r in rows):
        await delivery.release_due_bulk([r["id"] for r in rows if r["bulk_operation_id"]])
        for r in rows:
            if r["status"] == S.SCHEDULED and r["bulk_operation_id"] is None:
                await delivery.release_if_due(r["id"])
        rows = await Message.filter(id__in=ids).values(
            "id", "company_id", "subsidiary_id", "status", "next_attempt_at", "lease_until",
            "scheduled_at", "bulk_operation_id")
    due: list[uuid.UUID] = []
    for r in rows:
        status = S(r["status"])
        if status == S.QUEUED and r["next_attempt_at"] and r["next_attempt_at"] > at:
            done[r["id"]] = (status, r["next_attempt_at"])
        elif status == S.SENDING and r["lease_until"] and r["lease_until"] >= at:
            done[r["id"]] = (S.QUEUED, r["lease_until"])  # try again once the lease is over
        elif status in (S.QUEUED, S.SENDING):
            due.append(r["id"])
        else:
            done[r["id"]] = (status, None)
    if not due:
        return done
    # Each message goes through its subsidiary's server or its company's
    # (core.services.mail_settings); one target, one set of limits per server.
    due_ids = set(due)
    server_of = await _servers_of([r for r in rows if r["id"] in due_ids])
    targets = {s.settings_key: target_for(s) for s in server_of.values()}
    with_docs = await _attachments_of(due)
    blobs: dict[str, bytes] = {}
    started = time.monotonic()
    recipients = await paced.recipient_counts(
        [mid for mid in due if targets[server_of[mid].settings_key].owner])
    order = {mid: k for k, mid in enumerate(ids)}
    due.sort(key=order.__getitem__)

    def sender_for(server: MailSettings, docs: list[Document]) -> Any:
        async def send(msg: claims.Outgoing, before_data: Gate) -> SendResult:
            return await _send(ctx, msg, server, docs, blobs, in_slot=True,
                               before_data=before_data)
        return send

    def announce_for(docs: list[Document]) -> Callable[[claims.Outgoing], Announce | None]:
        def announce(msg: claims.Outgoing) -> Announce | None:
            plain = plain_envelope(msg, bool(docs))
            return plain if plain is not None and plain_addresses(*plain) else None
        return announce

    waiting = {}
    for mid in due:
        server = server_of[mid]
        target = targets[server.settings_key]
        # A company server's limits: the message goes now (counted), after a short wait
        # here, or stays QUEUED with expectedSendAt (core.services.pacing).
        held = await paced.hold_back(server, target, mid, recipients.get(mid, 1),
                                     started=started)
        if held is not None:
            done[mid] = (S.QUEUED, held)
            continue
        docs = with_docs.get(mid, [])
        work = Work(mid, sender_for(server, docs), _failed, announce=announce_for(docs))
        waiting[mid] = outbox.submit(target, work)
    for mid, fut in waiting.items():
        outcome = await fut
        if outcome is not NOT_HANDLED:
            done[mid] = outcome
    return done


async def _servers_of(rows: list[dict[str, Any]]) -> dict[uuid.UUID, MailSettings]:
    """Message id -> whose SMTP settings it is sent with (its subsidiary's or company's)."""
    companies = {c.id: c for c in await Company.filter(
        id__in=list({r["company_id"] for r in rows}))}
    subsidiaries = await mail_settings.subsidiaries_by_id(r["subsidiary_id"] for r in rows)
    out: dict[uuid.UUID, MailSettings] = {}
    for r in rows:
        company = companies[r["company_id"]]
        sub = subsidiaries.get(r["subsidiary_id"]) if r["subsidiary_id"] else None
        out[r["id"]] = mail_settings.server_owner(
            company, sub if sub is not None and sub.company_id == company.id else None)
    return out


async def _failed(msg: claims.Outgoing, result: SendResult) -> tuple[MessageStatus | None, Any]:
    moved = await _record_failure(msg, result)
    return (moved.status, moved.next_attempt_at) if moved is not None else (None, None)


async def sweep(ctx: dict[str, Any]) -> int:
    """Re-enqueue what Redis may have lost: due scheduled, due queued, expired leases (the
    messages of a worker that died: its heartbeat no longer renews them).

    Queued and expired ones are woken in chunks (a dead worker leaves whole chunks behind);
    due scheduled ones one by one. Returns how many due messages it found (an enqueue of a
    chunk or message already waiting is a no-op).
    """
    now = recording.now()
    scheduled = await Message.filter(status=S.SCHEDULED, scheduled_at__lte=now).limit(
        SWEEP_LIMIT).values_list("id", flat=True)
    queued = await Message.filter(
        Q(status=S.QUEUED)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    ).order_by("created_at").limit(SWEEP_LIMIT).values_list("id", flat=True)
    expired = await Message.filter(status=S.SENDING, lease_until__lt=now).order_by(
        "created_at").limit(SWEEP_LIMIT).values_list("id", flat=True)
    woken = 0
    for mid in scheduled:
        if await queue.enqueue_send(mid):  # type: ignore[arg-type]
            woken += 1
    ids: list[uuid.UUID] = [*expired, *queued]  # type: ignore[list-item]
    for start in range(0, len(ids), SWEEP_CHUNK):
        chunk = ids[start:start + SWEEP_CHUNK]
        # Named after its first and last message: the same chunk found again while it
        # still waits is not enqueued twice.
        if await queue.enqueue_batch(f"sweep:{chunk[0]}:{chunk[-1]}", chunk):
            woken += len(chunk)
    if woken:
        log.info("sweeper re-enqueued %d of %d due messages (%d with an expired lease)",
                 woken, len(scheduled) + len(ids), len(expired))
    return len(scheduled) + len(ids)
