"""The render context the template-rendering unit tests share: an interview, Nina (a Dutch
candidate in Amsterdam), and ``ctx`` building a full RenderContext around them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from core.mail.render import (
    CandidateCtx,
    CompanyCtx,
    InterviewCtx,
    PositionCtx,
    RenderContext,
    SenderCtx,
)

INTERVIEW = InterviewCtx(
    title="Gesprek Backend Engineer",
    starts_at=datetime(2026, 12, 15, 13, 0, tzinfo=UTC),
    ends_at=datetime(2026, 12, 15, 14, 0, tzinfo=UTC),
    timezone="Europe/Amsterdam",
    location="Keizersgracht 1, Amsterdam",
    video_link="https://meet.example/abc",
    interviewers=["Ada Admin", "Bo Berg"],
)
NINA = CandidateCtx("Nina", "de Vries", "Nina de Vries", "nina@example.org", "nl",
                    "Europe/Amsterdam")


def ctx(candidate: CandidateCtx = NINA, **kw: object) -> RenderContext:
    base = RenderContext(candidate=candidate, company=CompanyCtx("Acme Recruiting"),
                         sender=SenderCtx("Ada Admin", "ada@acme.example"),
                         position=PositionCtx("Backend Engineer"), interview=INTERVIEW)
    return replace(base, **kw)  # type: ignore[arg-type]
