"""The render context of a mail: the rows it is written from (candidate, company or
subsidiary, sender, position, interview, rejection reason) turned into placeholder values."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.mail import render as r
from core.models import (
    Application,
    Candidate,
    Company,
    Employee,
    Interview,
    Position,
    RejectionReason,
    Subsidiary,
)


@dataclass
class ContextRows:
    company: Company
    candidate: Candidate
    sender: Employee | None = None
    application: Application | None = None
    position: Position | None = None
    interview: Interview | None = None
    interviewers: list[str] = field(default_factory=list)
    rejection_reason: RejectionReason | None = None
    # The position's subsidiary: its name is the `company.name` of the mail.
    subsidiary: Subsidiary | None = None


def render_context(rows: ContextRows) -> r.RenderContext:
    c = rows.candidate
    owner_name = (rows.subsidiary or rows.company).name
    interview = None
    if rows.interview is not None:
        i = rows.interview
        interview = r.InterviewCtx(title=i.title, starts_at=i.starts_at, ends_at=i.ends_at,
                                   timezone=i.timezone, location=i.location,
                                   video_link=i.video_link, interviewers=list(rows.interviewers))
    return r.RenderContext(
        candidate=r.CandidateCtx(first_name=c.first_name, last_name=c.last_name,
                                 full_name=c.full_name, email=c.email, language=c.language,
                                 timezone=c.timezone),
        company=r.CompanyCtx(name=owner_name),
        sender=(r.SenderCtx(name=rows.sender.name, email=rows.sender.email) if rows.sender
                else r.SenderCtx(name=owner_name, email=None)),
        position=r.PositionCtx(title=rows.position.title) if rows.position else None,
        interview=interview,
        rejection=r.RejectionCtx(reason=rows.rejection_reason.label) if rows.rejection_reason else None,
    )


async def interviewer_names(interview: Interview) -> list[str]:
    return [e.name for e in await interview.interviewers.all().order_by("name")]
