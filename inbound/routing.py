"""From a signed recipient address and a parsed mail to one domain action.

The route is the signed local part only (never From, never the calendar's ORGANIZER):

* ``i-<interview>``: calendar answers (REPLY → answer, COUNTER → a REPLY message for
  the recruiter); plain mail becomes a reply message on the interview's thread.
* ``r-<message>``: the candidate's reply → INBOUND REPLY message. A calendar REPLY sent
  there (clients that answer Reply-To) counts as an answer when the message belongs to
  an interview. A DSN there is a bounce if it names one of the candidate's messages.
* ``b-<message>``: the envelope sender, where DSNs land → that message BOUNCED.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from core.models import Application, Interview, Message
from core.models.enums import InboundOutcome
from core.security import parse_signed_address
from core.services import inbound as service
from core.services import inbound_bounces, inbound_calendar, inbound_replies
from core.services.inbound import InboundCopy, InboundResult, IncomingAttachment
from core.settings import get_settings
from inbound.bounces import DeliveryReport, describe_delay, describe_failure
from inbound.parsing import ParsedMail
from inbound.replies import mark_quoted

KINDS = {"r": "reply", "b": "bounce", "i": "organizer"}


@dataclass(frozen=True)
class Route:
    kind: str  # reply | bounce | organizer
    object_id: uuid.UUID
    address: str


def route_for(address: str) -> Route | None:
    """The route of a recipient address at our domain, None when not ours or forged."""
    parsed = parse_signed_address(address)
    if parsed is None:
        return None
    kind, object_id = parsed
    return Route(KINDS[kind], object_id, address)


async def target_exists(route: Route) -> bool:
    if route.kind == "organizer":
        return await Interview.filter(id=route.object_id).exists()
    return await Message.filter(id=route.object_id).exists()


def message_links(msg: Message) -> dict[str, Any]:
    return {"company_id": msg.company_id, "candidate_id": msg.candidate_id,
            "interview_id": msg.interview_id}


async def deliver(*, parsed: ParsedMail, route: Route, copy: InboundCopy) -> InboundResult:
    """Do what the mail means for this one recipient; the copy is always kept."""
    if route.kind == "organizer":
        interview = await Interview.get_or_none(id=route.object_id)
        if interview is None:
            return await service.record_ignored(copy=copy, detail="the interview no longer exists")
        return await _to_organizer(parsed, interview, copy)
    msg = await Message.get_or_none(id=route.object_id)
    if msg is None:
        return await service.record_ignored(copy=copy, detail="the message no longer exists")
    if route.kind == "bounce":
        return await _to_bounce_address(parsed, msg, copy)
    return await _to_reply_address(parsed, msg, copy)


def _unreadable(parsed: ParsedMail) -> str:
    return f"not processed: {parsed.problem}; the copy is kept for review"


# ---------------------------------------------------------------------------- bounces


def _failure_reason(report: DeliveryReport, msg: Message) -> str | None:
    """Why the message bounced, or None when only a cc/bcc copy failed."""
    failed = report.failed
    to = {a.lower() for a in msg.to_addrs}
    named = [r for r in failed if r.final_recipient or r.original_recipient]
    if named and not any({r.final_recipient, r.original_recipient} & to for r in named):
        return None
    relevant = [r for r in failed if {r.final_recipient, r.original_recipient} & to] or failed
    return describe_failure(report, relevant)


async def _bounce(parsed: ParsedMail, msg: Message, copy: InboundCopy) -> InboundResult:
    report = parsed.report or DeliveryReport()
    links = {**message_links(msg), "message_id": msg.id}
    if report.is_delay:
        return await service.record_ignored(copy=copy, detail=f"not a bounce: {describe_delay(report)}",
                                            **links)
    if not report.is_failure:
        return await service.record_ignored(
            copy=copy, detail="delivery report without a failed recipient", **links)
    reason = _failure_reason(report, msg)
    if reason is None:
        failed = ", ".join(r.final_recipient or "?" for r in report.failed)
        return await service.record_ignored(
            copy=copy, detail=f"only a copy failed ({failed}); the candidate's address was not "
                              "reported", **links)
    return await inbound_bounces.record_bounce(message_id=msg.id, reason=reason, copy=copy)


async def _to_bounce_address(parsed: ParsedMail, msg: Message, copy: InboundCopy) -> InboundResult:
    links = {**message_links(msg), "message_id": msg.id}
    if not parsed.readable:
        return await service.record_ignored(copy=copy, detail=_unreadable(parsed), **links)
    if parsed.is_dsn:
        return await _bounce(parsed, msg, copy)
    if parsed.auto_reply:
        return await service.record_ignored(
            copy=copy, detail=f"automatic reply sent to the bounce address ({parsed.auto_reply})",
            **links)
    return await service.record_ignored(
        copy=copy, detail="mail to the bounce address that is not a delivery status notification",
        **links)


async def _returned_bounce(parsed: ParsedMail, *, company_id: uuid.UUID, candidate_id: uuid.UUID,
                           copy: InboundCopy, links: dict[str, Any]) -> InboundResult:
    """A DSN at a reply or organizer address: a bounce when it names one of the
    candidate's messages (by the returned Message-ID), else kept and ignored."""
    report = parsed.report or DeliveryReport()
    target = await inbound_bounces.find_returned_message(
        company_id=company_id, candidate_id=candidate_id,
        rfc_message_id=report.original_message_id, recruitmail_id=report.recruitmail_message)
    if target is None:
        return await service.record_ignored(
            copy=copy, detail="delivery status notification that names none of the candidate's "
                              "messages", **links)
    return await _bounce(parsed, target, copy)


# ---------------------------------------------------------------------------- replies


def rfc_message_id(parsed: ParsedMail, raw: bytes) -> str:
    """The mail's Message-ID, or a stable one made from its bytes (so a resend dedupes)."""
    if parsed.message_id:
        return parsed.message_id[:255]
    return f"{hashlib.sha256(raw).hexdigest()[:32]}@{get_settings().inbound_domain}"


async def _reply_message(parsed: ParsedMail, copy: InboundCopy, *, company_id: uuid.UUID,
                         candidate_id: uuid.UUID, application_id: uuid.UUID | None,
                         interview_id: uuid.UUID | None, notes: list[str]) -> InboundResult:
    body, _quoted = mark_quoted(parsed.text)
    skipped = [a.note for a in parsed.attachments if a.data is None and a.note]
    if skipped:
        written, quoted = service.split_reply_body(body)
        lines = "\n".join(f"[Attachment not stored: {n}]" for n in skipped)
        written = f"{written}\n\n{lines}".strip("\n")
        body = written if quoted is None else f"{written}\n\n{service.QUOTE_MARKER}\n{quoted}"
        notes = [*notes, *(f"attachment skipped: {n}" for n in skipped)]
    if parsed.auto_reply:
        notes = [*notes, f"automatic reply ({parsed.auto_reply})"]
    files = [IncomingAttachment(a.filename, a.content_type, a.data)
             for a in parsed.attachments if a.data is not None]
    return await inbound_replies.record_reply_message(
        company_id=company_id, candidate_id=candidate_id, application_id=application_id,
        interview_id=interview_id, from_name=parsed.from_name, from_address=parsed.from_address,
        to=copy.rcpt, subject=parsed.subject, body=body or "(empty message)",
        rfc_message_id=rfc_message_id(parsed, copy.raw), in_reply_to=parsed.in_reply_to,
        attachments=files, notes=notes, copy=copy,
    )


async def _counter(parsed: ParsedMail, interview_id: uuid.UUID, copy: InboundCopy) -> InboundResult:
    return await inbound_calendar.record_counter_proposal(
        interview_id=interview_id, replies=parsed.calendar.replies,
        proposals=parsed.calendar.proposals, copy=copy, from_name=parsed.from_name,
        from_address=parsed.from_address, rfc_message_id=rfc_message_id(parsed, copy.raw),
        in_reply_to=parsed.in_reply_to)


async def _to_reply_address(parsed: ParsedMail, msg: Message, copy: InboundCopy) -> InboundResult:
    links = message_links(msg)
    if not parsed.readable:
        return await service.record_ignored(copy=copy, detail=_unreadable(parsed), **links)
    if parsed.is_dsn:
        return await _returned_bounce(parsed, company_id=msg.company_id,
                                      candidate_id=msg.candidate_id, copy=copy, links=links)
    kind = parsed.calendar.kind
    notes: list[str] = []
    if msg.interview_id is not None and kind == "reply":
        return await inbound_calendar.record_calendar_reply(
            interview_id=msg.interview_id, replies=parsed.calendar.replies, copy=copy)
    if msg.interview_id is not None and kind == "counter":
        return await _counter(parsed, msg.interview_id, copy)
    if kind in ("reply", "counter"):
        notes.append(f"calendar {kind} to a message without an interview, kept as a reply")
    return await _reply_message(parsed, copy, company_id=msg.company_id,
                                candidate_id=msg.candidate_id, application_id=msg.application_id,
                                interview_id=msg.interview_id, notes=notes)


async def _to_organizer(parsed: ParsedMail, iv: Interview, copy: InboundCopy) -> InboundResult:
    application = await Application.get(id=iv.application_id)
    links: dict[str, Any] = {"company_id": iv.company_id,
                             "candidate_id": application.candidate_id, "interview_id": iv.id}
    if not parsed.readable:
        return await service.record_ignored(copy=copy, detail=_unreadable(parsed), **links)
    if parsed.is_dsn:
        return await _returned_bounce(parsed, company_id=iv.company_id,
                                      candidate_id=application.candidate_id, copy=copy, links=links)
    kind = parsed.calendar.kind
    if kind == "reply":
        return await inbound_calendar.record_calendar_reply(
            interview_id=iv.id, replies=parsed.calendar.replies, copy=copy)
    if kind == "counter":
        return await _counter(parsed, iv.id, copy)
    if kind == "none":
        # Plain mail to the organizer (clients that answer the ORGANIZER by mail).
        return await _reply_message(parsed, copy, company_id=iv.company_id,
                                    candidate_id=application.candidate_id,
                                    application_id=application.id, interview_id=iv.id, notes=[])
    method = parsed.calendar.method or "none"
    return await service.record_ignored(
        copy=copy, outcome=InboundOutcome.IGNORED,
        detail=f"calendar data ({kind}, METHOD {method}) is no answer to the invitation", **links)
