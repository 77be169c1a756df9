"""arq jobs: send one message, send a batch, and the sweeper that re-wakes lost work."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from arq import Retry
from tortoise.expressions import Q

from core import logs, queue
from core.blobs import read_blob
from core.mail.mime import Attachment, build_email
from core.models import Company, Document, Message
from core.models.companies import MailSettings
from core.models.enums import MessageStatus
from core.services import delivery, mail_settings
from core.settings import get_settings
from worker.transport import Outcome, SendResult, Transport, target_for

log = logging.getLogger(__name__)
S = MessageStatus

SWEEP_LIMIT = 5000


def _defer_seconds(until: Any) -> float:
    return max((until - delivery.now()).total_seconds(), 0.05)


async def deliver(ctx: dict[str, Any], message_id: uuid.UUID) -> MessageStatus | None:
    """Claim, send and record one message. Raises Retry when it must wait."""
    msg = await Message.get_or_none(id=message_id)
    if msg is None:
        return None
    now = delivery.now()
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

    claimed = await delivery.claim(message_id)
    if claimed is None:
        return None
    company = await Company.get(id=claimed.company_id)
    server = mail_settings.server_owner(
        company, await mail_settings.load_subsidiary(company.id, claimed.subsidiary_id))
    docs = await claimed.attachments.all()
    try:
        result = await _send(ctx, claimed, server, docs, {})
    except asyncio.CancelledError:
        await _release_on_stop([claimed.id])
        raise
    if result.outcome == Outcome.SENT:
        await delivery.mark_sent(claimed.id, detail=result.detail)
        await after_sent([claimed])
        return S.SENT
    moved = await _record_failure(claimed, result)
    if moved is not None and moved.status == S.QUEUED and moved.next_attempt_at:
        raise Retry(defer=_defer_seconds(moved.next_attempt_at))
    return moved.status if moved else None


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


async def _send(ctx: dict[str, Any], msg: Message | delivery.Outgoing, server: MailSettings,
                docs: list[Document],
                blobs: dict[str, bytes]) -> SendResult:
    """Build the mail of a claimed message and hand it to the SMTP server of `server`
    (its company's or its subsidiary's)."""
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
    return await transport.send(target_for(server), envelope, primary=msg.to_addrs)


async def _release_on_stop(message_ids: list[uuid.UUID]) -> None:
    """The worker is being stopped mid-send: put the claimed messages back in the queue
    (a mail the server took just before the stop may then go twice, same Message-ID)."""
    try:
        await asyncio.shield(delivery.release_claims(
            message_ids, reason="worker stopped before the server answered; queued again"))
    except Exception:
        log.exception("could not release %d claimed messages; their lease will expire",
                      len(message_ids))


async def _record_failure(msg: Message | delivery.Outgoing,
                          result: SendResult) -> Message | None:
    if result.outcome == Outcome.PERMANENT:
        return await delivery.mark_failed(msg.id, error=result.detail)
    return await delivery.mark_retry(msg.id, error=result.detail)


async def after_sent(messages: Sequence[Message | delivery.Outgoing]) -> None:
    """What waits on a message reaching SENT: anonymisation after a rejection email."""
    from core.services.bulk import after_rejection_sent

    await after_rejection_sent(messages)


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
    """Send a chunk: one claim, concurrent sends over the pooled connections, one write for
    all that were accepted. Messages that must wait (backoff, lease) get their own job."""
    ids = [uuid.UUID(m) for m in message_ids]
    token, claimed = await delivery.claim_many(ids)
    claimed_ids = {m.id for m in claimed}
    for mid in ids:
        if mid not in claimed_ids:
            await queue.enqueue_send(mid)  # a no-op for messages already done
    if not claimed:
        return 0
    companies = {c.id: c for c in await Company.filter(id__in=list({m.company_id for m in claimed}))}
    subsidiaries = await mail_settings.subsidiaries_by_id(m.subsidiary_id for m in claimed)
    with_docs = await _attachments_of(list(claimed_ids))
    blobs: dict[str, bytes] = {}
    # A mail is built only when a connection can take it: memory stays flat in the chunk size.
    slots = asyncio.Semaphore(get_settings().smtp_connections_per_server)

    async def send_one(m: delivery.Outgoing) -> SendResult:
        async with slots:
            company = companies[m.company_id]
            sub = subsidiaries.get(m.subsidiary_id) if m.subsidiary_id else None
            server = mail_settings.server_owner(
                company, sub if sub is not None and sub.company_id == company.id else None)
            return await _send(ctx, m, server, with_docs.get(m.id, []), blobs)

    try:
        results = await asyncio.gather(*(send_one(m) for m in claimed))
    except asyncio.CancelledError:
        await _release_on_stop([m.id for m in claimed])
        raise
    sent: list[tuple[uuid.UUID, str]] = []
    for msg, result in zip(claimed, results, strict=True):
        if result.outcome == Outcome.SENT:
            sent.append((msg.id, result.detail))
            continue
        moved = await _record_failure(msg, result)
        if moved is not None and moved.status == S.QUEUED:
            await queue.enqueue_send(moved.id, at=moved.next_attempt_at)
    count = await delivery.mark_sent_many(token, sent)
    for m, result in zip(claimed, results, strict=True):
        log.info("message %s: %s", result.outcome.value, result.detail,
                 extra={"message_id": str(m.id)})
    sent_ids = {mid for mid, _ in sent}
    await after_sent([m for m in claimed if m.id in sent_ids])
    return count


async def sweep(ctx: dict[str, Any]) -> int:
    """Re-enqueue what Redis may have lost: due scheduled, due queued, expired leases.

    Returns how many due messages it found (an enqueue of one already waiting is a no-op).
    """
    now = delivery.now()
    ids: list[uuid.UUID] = []
    ids += await Message.filter(status=S.SCHEDULED, scheduled_at__lte=now).limit(
        SWEEP_LIMIT).values_list("id", flat=True)  # type: ignore[arg-type]
    ids += await Message.filter(
        Q(status=S.QUEUED)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    ).limit(SWEEP_LIMIT).values_list("id", flat=True)  # type: ignore[arg-type]
    ids += await Message.filter(status=S.SENDING, lease_until__lt=now).limit(
        SWEEP_LIMIT).values_list("id", flat=True)  # type: ignore[arg-type]
    woken = 0
    for mid in ids:
        if await queue.enqueue_send(mid):
            woken += 1
    if woken:
        log.info("sweeper re-enqueued %d of %d due messages", woken, len(ids))
    return len(ids)
