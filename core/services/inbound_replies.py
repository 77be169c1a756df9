"""A candidate's reply mail, stored as an INBOUND REPLY message with its attachments."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core.models import InboundReceipt, Message
from core.models.enums import InboundOutcome, MessageDirection, MessageKind, MessageStatus
from core.services import inbound as copies  # copies.store_inbound_copy writes InboundEmail
from core.services import recording
from core.services.inbound import (
    ATTACHMENT_LIMIT,
    InboundCopy,
    InboundResult,
    IncomingAttachment,
    record_ignored,
    safe_text,
)


def _receipt_key(rfc_message_id: str) -> str:
    return hashlib.sha256(rfc_message_id.strip().encode()).hexdigest()


async def record_reply_message(
    *,
    company_id: uuid.UUID,
    candidate_id: uuid.UUID,
    application_id: uuid.UUID | None,
    interview_id: uuid.UUID | None,
    from_name: str,
    from_address: str,
    to: str,
    subject: str,
    body: str,
    rfc_message_id: str,
    in_reply_to: str | None,
    attachments: Sequence[IncomingAttachment],
    notes: Sequence[str],
    copy: InboundCopy,
    outcome: InboundOutcome = InboundOutcome.REPLY,
) -> InboundResult:
    """A candidate's mail as an INBOUND REPLY message (status RECEIVED) with its files.

    Attachments become Documents of the candidate (bytes written before the
    transaction, removed again if it fails). The message and its first MessageEvent are
    stored with the mail's copy in one transaction and published after the commit. The
    same Message-ID arriving again for the candidate is recorded once.
    """
    from core.services.documents import create_documents, discard_all, stage_bytes

    existing = await Message.filter(
        company_id=company_id, candidate_id=candidate_id, direction=MessageDirection.INBOUND,
        rfc_message_id=rfc_message_id,
    ).first()
    links: dict[str, Any] = {"company_id": company_id, "candidate_id": candidate_id,
                             "interview_id": interview_id}
    if existing is not None:
        return await record_ignored(
            copy=copy, detail=f"duplicate of the reply already recorded as message {existing.id}",
            message_id=existing.id, **links)
    staged = []
    try:
        for att in attachments:
            staged.append(await stage_bytes(att.data, filename=att.filename,
                                            content_type=att.content_type,
                                            limit=ATTACHMENT_LIMIT))
        msg = Message(
            id=uuid.uuid4(), company_id=company_id, candidate_id=candidate_id,
            application_id=application_id, interview_id=interview_id, sender_id=None,
            kind=MessageKind.REPLY, direction=MessageDirection.INBOUND,
            status=MessageStatus.RECEIVED,
            from_name=safe_text(from_name or from_address or "Unknown sender", 300),
            from_address=safe_text(from_address, 320), to_addrs=[safe_text(to, 320)],
            cc_addrs=[], bcc_addrs=[], subject=safe_text(subject, 998) or "(no subject)",
            body=safe_text(body, 1_000_000), rfc_message_id=safe_text(rfc_message_id, 255),
            in_reply_to=safe_text(in_reply_to, 998) or None, attempts=0,
        )
        detail = f"{outcome.value.lower()} stored as message {msg.id}"
        if staged:
            detail += f" with {len(staged)} attachment(s)"
        if notes:
            detail += "; " + "; ".join(notes)
        try:
            async with in_transaction():
                # The unique receipt makes a twin arriving at the same moment fail here.
                await InboundReceipt.create(candidate_id=candidate_id,
                                            key=_receipt_key(rfc_message_id))
                await msg.save(force_create=True)
                docs = await create_documents(staged, company_id=company_id,
                                              candidate_id=candidate_id, uploaded_by=None)
                if docs:
                    await msg.attachments.add(*docs)
                transitions = await recording.record_created([msg])
                row = await copies.store_inbound_copy(copy=copy, outcome=outcome, detail=detail,
                                                      message_id=msg.id, **links)
        except IntegrityError:
            discard_all(staged)
            twin = await Message.filter(
                company_id=company_id, candidate_id=candidate_id,
                direction=MessageDirection.INBOUND, rfc_message_id=msg.rfc_message_id).first()
            return await record_ignored(
                copy=copy, detail="duplicate of a reply recorded at the same moment"
                + (f" as message {twin.id}" if twin else ""),
                message_id=twin.id if twin else None, **links)
    except BaseException:
        discard_all(staged)
        raise
    await recording.publish_created(transitions)
    return InboundResult(outcome, detail, row.id, message_id=msg.id, interview_id=interview_id)
