"""arq jobs: send one message, send a batch, and the sweeper that re-wakes lost work."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from arq import Retry
from tortoise.expressions import Q

from core import queue
from core.blobs import read_blob
from core.mail.mime import Attachment, build_email
from core.models import Company, Message
from core.models.enums import MessageStatus
from core.services import delivery
from worker.transport import Outcome, Transport, target_for

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
        if await delivery.release_if_due(msg.id) is None:
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
    docs = await claimed.attachments.all()
    try:
        attachments = [Attachment(d.filename, d.content_type, read_blob(d.blob_key)) for d in docs]
    except OSError as exc:
        await delivery.mark_failed(claimed.id, error=f"an attachment could not be read: {exc}")
        return S.FAILED
    envelope = build_email(claimed, attachments)
    transport: Transport = ctx["transport"]
    result = await transport.send(target_for(company), envelope, primary=claimed.to_addrs)
    if result.outcome == Outcome.SENT:
        await delivery.mark_sent(claimed.id, detail=result.detail)
        await on_sent(claimed)
        return S.SENT
    if result.outcome == Outcome.PERMANENT:
        await delivery.mark_failed(claimed.id, error=result.detail)
        return S.FAILED
    moved = await delivery.mark_retry(claimed.id, error=result.detail)
    if moved is not None and moved.status == S.QUEUED and moved.next_attempt_at:
        raise Retry(defer=_defer_seconds(moved.next_attempt_at))
    return moved.status if moved else None


async def on_sent(msg: Message) -> None:
    """Hook for what waits on a message reaching SENT (e.g. anonymisation after rejection)."""
    hooks = AFTER_SENT_HOOKS
    for hook in hooks:
        await hook(msg)


AFTER_SENT_HOOKS: list[Any] = []


async def send_message(ctx: dict[str, Any], message_id: str) -> str | None:
    status = await deliver(ctx, uuid.UUID(message_id))
    return status.value if status else None


async def send_batch(ctx: dict[str, Any], message_ids: list[str]) -> int:
    """Send a chunk of messages; any that must wait get their own job."""
    sent = 0
    for mid in message_ids:
        try:
            status = await deliver(ctx, uuid.UUID(mid))
        except Retry:
            await queue.enqueue_send(uuid.UUID(mid))
            continue
        if status == S.SENT:
            sent += 1
    return sent


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
