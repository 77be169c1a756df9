"""What the inbound gateway does to the domain: calendar answers, replies, bounces.

Plain async functions with keyword arguments; the gateway (inbound/) decides which one
a mail goes to. Every function stores the mail's copy (InboundEmail) in the same
transaction as its effect and publishes events only after the commit. Functions are
idempotent where a sender may deliver the same mail twice (a lost "250" makes it retry).
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import events
from core.models import Application, Candidate, InboundEmail, InboundReceipt, Interview, Message
from core.models.enums import (
    AttendeeResponse,
    InboundOutcome,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from core.services import delivery

if TYPE_CHECKING:
    from core.mail.itip_interpret import CalendarReply, ProposedTime

log = logging.getLogger(__name__)

RAW_COPY_LIMIT = 1_000_000  # bytes of a mail kept in InboundEmail.raw_mail
ATTACHMENT_LIMIT = 10 * 1024 * 1024  # per attached file; larger ones are skipped with a note
MAX_COMMENT = 4000

# A reply's body is the mail's full text; when the candidate's client quoted earlier
# mail, this line (alone on its line) is inserted before the quoted history. Text above
# it is what the candidate wrote. Use split_reply_body() to read it back.
QUOTE_MARKER = "-------- quoted history --------"

_RESPONSES = {
    "ACCEPTED": AttendeeResponse.ACCEPTED,
    "DECLINED": AttendeeResponse.DECLINED,
    "TENTATIVE": AttendeeResponse.TENTATIVE,
    "NEEDS-ACTION": AttendeeResponse.NEEDS_ACTION,
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InboundRetry(Exception):
    """The state changed under us (e.g. a reschedule while reading a reply): answer 451."""


def safe_text(value: object, limit: int) -> str:
    """Text any database takes: no NUL or other control bytes, no lone surrogates, capped."""
    if value is None:
        return ""
    text = _CONTROL.sub("", str(value)[:limit])
    return text.encode("utf-8", "replace").decode("utf-8")


def split_reply_body(body: str) -> tuple[str, str | None]:
    """(what the candidate wrote, the quoted history or None) of a stored reply body."""
    head, sep, quoted = body.partition(f"{QUOTE_MARKER}\n")
    if not sep:
        if body.endswith(QUOTE_MARKER):
            return body[: -len(QUOTE_MARKER)].rstrip(), ""
        return body, None
    return head.rstrip(), quoted


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InboundCopy:
    """The mail as it came over SMTP, for one routed recipient."""

    mail_from: str
    rcpt: str
    raw: bytes


@dataclass(frozen=True)
class IncomingAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class InboundResult:
    outcome: InboundOutcome
    detail: str
    inbound_email_id: uuid.UUID
    message_id: uuid.UUID | None = None  # the reply created, or the message that bounced
    interview_id: uuid.UUID | None = None


async def store_inbound_copy(
    *,
    copy: InboundCopy,
    outcome: InboundOutcome,
    detail: str,
    company_id: uuid.UUID | None = None,
    candidate_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    interview_id: uuid.UUID | None = None,
) -> InboundEmail:
    """Keep the mail (first RAW_COPY_LIMIT bytes) and what was done with it.

    Runs in the caller's transaction when there is one.
    """
    return await InboundEmail.create(
        company_id=company_id,
        candidate_id=candidate_id,
        message_id=message_id,
        interview_id=interview_id,
        mail_from=safe_text(copy.mail_from, 998),
        rcpt_to=[safe_text(copy.rcpt, 320)],
        size=len(copy.raw),
        raw_mail=bytes(copy.raw[:RAW_COPY_LIMIT]),
        truncated=len(copy.raw) > RAW_COPY_LIMIT,
        outcome=outcome.value,
        detail=safe_text(detail, 4000),
    )


async def record_ignored(
    *, copy: InboundCopy, detail: str, outcome: InboundOutcome = InboundOutcome.IGNORED,
    **links: Any,
) -> InboundResult:
    """Keep a mail that changes nothing, with the reason in `detail`."""
    row = await store_inbound_copy(copy=copy, outcome=outcome, detail=detail, **links)
    return InboundResult(outcome, detail, row.id, links.get("message_id"), links.get("interview_id"))


@dataclass(frozen=True)
class _InterviewContext:
    interview: Interview
    candidate: Candidate

    @property
    def links(self) -> dict[str, Any]:
        return {"company_id": self.interview.company_id, "candidate_id": self.candidate.id,
                "interview_id": self.interview.id}


async def _interview_context(interview_id: uuid.UUID) -> _InterviewContext | None:
    interview = await Interview.get_or_none(id=interview_id)
    if interview is None:
        return None
    application = await Application.get(id=interview.application_id)
    candidate = await Candidate.get(id=application.candidate_id)
    return _InterviewContext(interview, candidate)


def _why_not(ctx: _InterviewContext) -> str | None:
    if ctx.interview.cancelled:
        return "the interview was cancelled; calendar answers to it are ignored"
    if not ctx.interview.invitation_sent:
        return "no invitation was sent for this interview yet"
    if not ctx.candidate.email or ctx.candidate.anonymized_at is not None:
        return "the candidate has no email address (anonymized)"
    return None


def choose_reply(
    replies: Sequence[CalendarReply], *, uid: str, attendee: str, sequence: int
) -> tuple[CalendarReply | None, str]:
    """The reply that answers this interview for this candidate, or None and why not.

    Only a VEVENT with the interview's UID and an ATTENDEE equal to the candidate's
    address (case-insensitive) counts; a SEQUENCE below the interview's answers an older
    invitation, one above it an invitation never sent (forged or broken). The master
    event wins over a single-occurrence answer.
    """
    if not replies:
        return None, "the calendar reply carries no ATTENDEE answer"
    attendee = attendee.strip().lower()
    reasons: list[str] = []
    matching: list[CalendarReply] = []
    for r in replies:
        if r.uid.strip() != uid:
            reasons.append(f"UID {safe_text(r.uid, 120)!r} is not this interview's")
        elif r.attendee.strip().lower() != attendee:
            reasons.append(f"attendee {safe_text(r.attendee, 120)!r} is not the candidate")
        elif r.sequence is not None and r.sequence < sequence:
            reasons.append(
                f"it answers an older invitation (SEQUENCE {r.sequence} < {sequence})"
            )
        elif r.sequence is not None and r.sequence > sequence:
            reasons.append(
                f"it answers an invitation never sent (SEQUENCE {r.sequence} > {sequence}, "
                "the last one sent)"
            )
        else:
            matching.append(r)
    if not matching:
        return None, "; ".join(dict.fromkeys(reasons))[:1000]
    matching.sort(key=lambda r: r.recurrence_id is not None)
    return matching[0], ""


async def _matching_reply(
    interview_id: uuid.UUID, replies: Sequence[CalendarReply]
) -> tuple[_InterviewContext | None, CalendarReply | None, str | None]:
    """(the interview's context or None, the reply that may change it or None, why not)."""
    ctx = await _interview_context(interview_id)
    if ctx is None:
        return None, None, "the interview no longer exists"
    why = _why_not(ctx)
    if why is not None:
        return ctx, None, why
    chosen, why = choose_reply(replies, uid=ctx.interview.uid,
                               attendee=ctx.candidate.email or "", sequence=ctx.interview.sequence)
    return ctx, chosen, why


async def record_calendar_reply(
    *, interview_id: uuid.UUID, replies: Sequence[CalendarReply], copy: InboundCopy
) -> InboundResult:
    """An iTIP REPLY for the interview: record the candidate's answer and COMMENT.

    Nothing changes (outcome IGNORED, with why) unless a reply carries the interview's
    UID, the candidate's address as ATTENDEE and the SEQUENCE of the
    interview's last invitation, and the interview is neither cancelled nor uninvited. The update is
    conditional on the interview's SEQUENCE and cancel flag, so a reschedule racing the
    reply makes it retry (InboundRetry → 451) instead of answering the wrong version.
    """
    ctx, chosen, why = await _matching_reply(interview_id, replies)
    if ctx is None:
        return await record_ignored(copy=copy, detail="the interview no longer exists")
    iv = ctx.interview
    if chosen is None:
        return await record_ignored(copy=copy, detail=f"calendar reply ignored: {why}", **ctx.links)
    response = _RESPONSES.get(chosen.partstat.upper())
    if response is None:
        return await record_ignored(
            copy=copy, detail=f"calendar reply ignored: PARTSTAT {safe_text(chosen.partstat, 40)} "
                              "is not an answer to an invitation", **ctx.links)
    comment = safe_text(chosen.comment, MAX_COMMENT).strip() or None
    at = now()
    unchanged = iv.candidate_response == response and iv.candidate_comment == comment
    detail = f"candidate answered {response.value}" + (f" with comment {comment!r}" if comment else "")
    async with in_transaction():
        if unchanged:
            detail += " (unchanged)"
        else:
            changed = await Interview.filter(
                id=iv.id, sequence=iv.sequence, cancelled=False
            ).update(candidate_response=response, candidate_responded_at=at,
                     candidate_comment=comment)
            if changed != 1:
                raise InboundRetry("the interview changed while its reply was processed")
        row = await store_inbound_copy(copy=copy, outcome=InboundOutcome.CALENDAR_REPLY,
                                       detail=detail, **ctx.links)
    if not unchanged:
        await events.publish(iv.company_id, events.INTERVIEW_RESPONSE, interview_id=iv.id,
                             response=response.value, comment=comment, at=at)
    return InboundResult(InboundOutcome.CALENDAR_REPLY, detail, row.id, interview_id=iv.id)


def _when(raw: str | None, tzid: str | None) -> str:
    m = re.fullmatch(r"(\d{4})(\d\d)(\d\d)(?:T(\d\d)(\d\d)\d\d(Z?))?", (raw or "").strip())
    if not m:
        return safe_text(raw, 60) or "?"
    y, mo, d, h, mi, z = m.groups()
    text = f"{y}-{mo}-{d}" + (f" {h}:{mi}" if h else "")
    zone = "UTC" if z else safe_text(tzid, 64)
    return f"{text} {zone}".strip()


async def record_counter_proposal(
    *,
    interview_id: uuid.UUID,
    replies: Sequence[CalendarReply],
    proposals: Sequence[ProposedTime],
    copy: InboundCopy,
    from_name: str,
    from_address: str,
    rfc_message_id: str,
    in_reply_to: str | None,
) -> InboundResult:
    """An iTIP COUNTER (the candidate proposes another time): a REPLY message for the
    recruiter, never an answer. The interview itself does not change."""
    ctx, chosen, why = await _matching_reply(interview_id, replies)
    if ctx is None:
        return await record_ignored(copy=copy, detail="the interview no longer exists")
    iv = ctx.interview
    if chosen is None:
        return await record_ignored(copy=copy, detail=f"counter proposal ignored: {why}", **ctx.links)
    times = [p for p in proposals if p.uid.strip() == iv.uid] or list(proposals)
    lines = [f"{ctx.candidate.full_name} proposed a new time for \"{iv.title}\":"]
    for p in times[:5]:
        lines.append(f"  {_when(p.dtstart, p.tzid)} – {_when(p.dtend, p.tzid)}")
    if not times:
        lines.append("  (no time was given in the proposal)")
    if chosen.comment:
        lines += ["", f"Comment: {safe_text(chosen.comment, MAX_COMMENT)}"]
    lines += ["", "The interview is unchanged; reschedule it to accept the proposal."]
    application = await Application.get(id=iv.application_id)
    return await record_reply_message(
        company_id=iv.company_id, candidate_id=ctx.candidate.id, application_id=application.id,
        interview_id=iv.id, from_name=from_name, from_address=from_address, to=copy.rcpt,
        subject=f"New time proposed: {iv.title}", body="\n".join(lines),
        rfc_message_id=rfc_message_id, in_reply_to=in_reply_to, attachments=[], notes=[],
        copy=copy, outcome=InboundOutcome.COUNTER,
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
                transitions = await delivery.record_created([msg])
                row = await store_inbound_copy(copy=copy, outcome=outcome, detail=detail,
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
    await delivery.publish_created(transitions)
    return InboundResult(outcome, detail, row.id, message_id=msg.id, interview_id=interview_id)


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
    row = await store_inbound_copy(copy=copy, outcome=InboundOutcome.BOUNCE, detail=detail, **links)
    return InboundResult(InboundOutcome.BOUNCE, detail, row.id, message_id=msg.id,
                         interview_id=msg.interview_id)
