"""Interviews: lookups (scheduling, rescheduling and cancelling come with their service)."""

import strawberry

from schema.context import Info
from schema.relay import uuid_of
from schema.types.interviews import Interview, load_interview


@strawberry.type
class InterviewQuery:
    @strawberry.field
    async def interview(self, info: Info, id: strawberry.ID) -> Interview | None:
        return await load_interview(info, uuid_of(id, "Interview"))
