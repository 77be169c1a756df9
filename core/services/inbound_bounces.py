"""Delivery status notifications: the outbound message a report returns, marked BOUNCED."""

from __future__ import annotations

import uuid
from typing import Any

from core.models import Message
from core.models.enums import InboundOutcome, MessageDirection, MessageStatus
from core.services import delivery
from core.services import inbound as copies  # copies.store_inbound_copy writes InboundEmail
from core.services.inbound import InboundCopy, InboundResult, record_ignored, safe_text


async def find_returned_message(
    *, company_id: uuid.UUID, candidate_id: uuid.UUID | None, rfc_message_id: str | None,
    recruitmail_id: str | None,
) -> Message | None:
    """The outbound message a DSN returned, matched within one company (and candidate)."""
    query = Message.filter(company_id=company_id, direction=MessageDirection.OUTBOUND)
    if candidate_id is not None:
        query = query.filter(candidate_id=candidate_id)
    if rfc_message_id:
        found = await query.filter(rfc_message_id=rfc_message_id[:255]).first()
        if found is not None:
            return found
    if recruitmail_id:
        try:
            mid = uuid.UUID(recruitmail_id.strip())
        except ValueError:
            return None
        return await query.filter(id=mid).first()
    return None


async def record_bounce(
    *, message_id: uuid.UUID, reason: str, copy: InboundCopy
) -> InboundResult:
    """A delivery status notification for an outbound message: SENT → BOUNCED with reason.

    A message bounced already stays so (the report is kept, outcome BOUNCE); one that
    was never sent is left alone (IGNORED, with why).
    """
    msg = await Message.get_or_none(id=message_id)
    if msg is None:
        return await record_ignored(copy=copy, detail="bounce for a message that no longer exists")
    links: dict[str, Any] = {"company_id": msg.company_id, "candidate_id": msg.candidate_id,
                             "message_id": msg.id, "interview_id": msg.interview_id}
    reason = safe_text(reason, 2000)
    if msg.direction != MessageDirection.OUTBOUND:
        return await record_ignored(copy=copy, detail="bounce for an inbound message ignored", **links)
    if msg.status == MessageStatus.BOUNCED:
        return await record_ignored(copy=copy, outcome=InboundOutcome.BOUNCE,
                                    detail=f"message was bounced already; report: {reason}", **links)
    bounced = await delivery.mark_bounced(msg.id, reason=reason)
    if bounced is None:
        return await record_ignored(
            copy=copy, detail=f"bounce ignored: the message is {msg.status.value}, not sent; "
                              f"report: {reason}", **links)
    detail = f"message marked BOUNCED: {reason}"
    row = await copies.store_inbound_copy(copy=copy, outcome=InboundOutcome.BOUNCE, detail=detail,
                                          **links)
    return InboundResult(InboundOutcome.BOUNCE, detail, row.id, message_id=msg.id,
                         interview_id=msg.interview_id)
