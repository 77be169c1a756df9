"""Candidates, their applications and rejection reasons."""

from datetime import datetime
from typing import Any, Self

import strawberry

import schema.relay as relay
from core import models
from core.services.documents import visible_query
from schema.context import Info
from schema.enums import ApplicationStatus
from schema.relay import Connection, Node, registered
from schema.types.company import Position, load_position


@registered
@strawberry.type
class Candidate(Node, relay.FromRow):
    first_name: str | None
    last_name: str | None
    full_name: str
    email: str | None
    language: str = strawberry.field(description=(
        'BCP 47 language tag used to render dates in templates, e.g. "nl".'))
    timezone: str = strawberry.field(description=(
        'IANA time zone used for dates in templates and invitations, e.g. '
        '"Europe/Amsterdam".'))
    anonymized: bool
    row: strawberry.Private[models.Candidate]

    @classmethod
    def from_row(cls, row: models.Candidate, **values: Any) -> Self:
        return super().from_row(row, anonymized=row.anonymized_at is not None, **values)

    @strawberry.field
    async def applications(self, info: Info) -> list["Application"]:
        rows = await info.context.loaders.applications_by_candidate.load(self.row.id)
        return [Application.from_row(r) for r in rows]

    @strawberry.field(description=(
        "The Messages tab: everything sent to and received from this candidate, newest "
        "first."), graphql_type=relay.lazy("MessageConnection", "schema.types.messages"))
    async def messages(
        self, info: Info, first: int | None = 50, after: str | None = None
    ) -> Connection[Node]:
        qs = models.Message.filter(company_id=info.context.company_id,
                                   candidate_id=self.row.id)
        return relay.connection(await relay.paginate(qs, first, after), "Message")

    @strawberry.field(description="Only the documents the viewer may see.",
                      graphql_type=relay.lazy_list("Document", "schema.types.documents"))
    async def documents(self, info: Info) -> list[Node]:
        qs = models.Document.filter(company_id=info.context.company_id,
                                    candidate_id=self.row.id)
        rows = await visible_query(qs, info.context.viewer).order_by("created_at", "id")
        return [relay.build("Document", r) for r in rows]


@registered
@strawberry.type
class CandidateConnection(Connection[Candidate]):
    pass


@registered
@strawberry.type
class RejectionReason(Node, relay.FromRow):
    label: str
    row: strawberry.Private[models.RejectionReason]


@registered
@strawberry.type
class Application(Node, relay.FromRow):
    status: ApplicationStatus  # type: ignore[valid-type]
    rejection_note: str | None
    rejected_at: datetime | None
    row: strawberry.Private[models.Application]

    @strawberry.field
    async def candidate(self, info: Info) -> Candidate:
        return await relay.load_required(info, "Candidate", self.row.candidate_id)

    @strawberry.field
    async def position(self, info: Info) -> Position:
        return relay.present(await load_position(info, self.row.position_id))

    @strawberry.field
    async def rejection_reason(self, info: Info) -> RejectionReason | None:
        return await relay.load(info, "RejectionReason", self.row.rejection_reason_id)

    @strawberry.field(graphql_type=relay.lazy_list("Interview", "schema.types.interviews"))
    async def interviews(self, info: Info) -> list[Node]:
        rows = await info.context.loaders.interviews_by_application.load(self.row.id)
        return [relay.build("Interview", r) for r in rows]


@registered
@strawberry.type
class ApplicationConnection(Connection[Application]):
    pass


load_candidate = relay.loaded_node("Candidate", "candidate")
load_application = relay.loaded_node("Application", "application")
load_rejection_reason = relay.loaded_node("RejectionReason", "rejection_reason")
