"""Interviews and the candidate's calendar answer."""

from datetime import datetime

import strawberry

from core import models
from core.mail.details import InterviewCtx, interview_details
from core.models.enums import MessageKind
from schema.context import Info
from schema.enums import AttendeeResponse
from schema.relay import (
    FromRow,
    Node,
    build,
    lazy,
    lazy_list,
    load_required,
    loaded_node,
    present,
    registered,
)
from schema.types.company import Employee, load_employee

INVITATION_KINDS = (MessageKind.INTERVIEW_INVITATION, MessageKind.INTERVIEW_UPDATE,
                    MessageKind.INTERVIEW_CANCELLATION)


@registered
@strawberry.type
class Interview(Node, FromRow):
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    location: str | None
    video_link: str | None
    sequence: int = strawberry.field(description="iCalendar SEQUENCE of the last invitation sent.")
    cancelled: bool
    candidate_response: AttendeeResponse = strawberry.field(  # type: ignore[valid-type]
        description="What the candidate's calendar answered to the invitation.")
    candidate_responded_at: datetime | None
    candidate_comment: str | None = strawberry.field(
        description="The COMMENT a calendar client sent with its reply, if any.")
    row: strawberry.Private[models.Interview]

    @strawberry.field(graphql_type=lazy("Application", "schema.types.candidates"))
    async def application(self, info: Info) -> Node:
        return await load_required(info, "Application", self.row.application_id)

    @strawberry.field
    async def organizer(self, info: Info) -> Employee:
        return present(await load_employee(info, self.row.organizer_id))

    @strawberry.field
    async def interviewers(self, info: Info) -> list[Employee]:
        rows = await self.row.interviewers.all().order_by("name", "id")
        return [Employee.from_row(r) for r in rows]

    @strawberry.field(description=(
        "The 'copy details' block: title, date and time in the candidate's zone and "
        "language, location, video link, interviewers."))
    async def details(self, info: Info) -> str:
        loaders = info.context.loaders
        application = await loaders.application.load(self.row.application_id)
        candidate = await loaders.candidate.load(application.candidate_id) if application else None
        names = [e.name for e in await self.row.interviewers.all().order_by("name", "id")]
        ctx = InterviewCtx(title=self.title, starts_at=self.starts_at, ends_at=self.ends_at,
                           timezone=self.timezone, location=self.location,
                           video_link=self.video_link, interviewers=names)
        return interview_details(ctx, candidate.language if candidate else None,
                                 candidate.timezone if candidate else self.timezone)

    @strawberry.field(graphql_type=lazy_list("Message", "schema.types.messages"))
    async def invitations(self, info: Info) -> list[Node]:
        rows = await models.Message.filter(
            company_id=info.context.company_id, interview_id=self.row.id,
            kind__in=list(INVITATION_KINDS),
        ).order_by("created_at", "id")
        return [build("Message", r) for r in rows]


load_interview = loaded_node("Interview", "interview")
