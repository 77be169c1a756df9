"""Calendar answers from candidates: an iTIP REPLY or COUNTER applied to their interview.

A REPLY records the candidate's answer and comment on the interview; a COUNTER (another
time proposed) becomes a REPLY message for the recruiter and leaves the interview as it is.
Only an answer with the interview's UID, the candidate as ATTENDEE and the SEQUENCE of the
last invitation counts; anything else is kept with the reason (outcome IGNORED).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tortoise.transactions import in_transaction

from core import events
from core.models import Application, Candidate, Interview
from core.models.enums import AttendeeResponse, InboundOutcome
from core.services import inbound as copies  # copies.store_inbound_copy writes InboundEmail
from core.services.inbound import InboundCopy, InboundResult, InboundRetry, now, record_ignored, safe_text
from core.services.inbound_replies import record_reply_message

if TYPE_CHECKING:
    from core.mail.itip_interpret import CalendarReply, ProposedTime

MAX_COMMENT = 4000

_RESPONSES = {
    "ACCEPTED": AttendeeResponse.ACCEPTED,
    "DECLINED": AttendeeResponse.DECLINED,
    "TENTATIVE": AttendeeResponse.TENTATIVE,
    "NEEDS-ACTION": AttendeeResponse.NEEDS_ACTION,
}


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
        row = await copies.store_inbound_copy(copy=copy, outcome=InboundOutcome.CALENDAR_REPLY,
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
