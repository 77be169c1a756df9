"""Documents: metadata and who may see a restricted one (the bytes live in core.blobs)."""

import uuid
from datetime import datetime
from typing import Any, Self

import strawberry
from graphql import GraphQLError
from tortoise.queryset import QuerySet

from core import models
from core.services.documents import visible_query
from schema.context import Info
from schema.enums import DocumentAccessLevel
from schema.relay import FromRow, Node, gid, lazy, load, node_resolver, present, registered
from schema.types.company import Employee, load_employee


def download_path(document_id: uuid.UUID) -> str:
    return f"/documents/{gid('Document', document_id)}"


@strawberry.type
class DocumentGrant:
    level: DocumentAccessLevel  # type: ignore[valid-type]
    row: strawberry.Private[models.DocumentGrant]

    @strawberry.field
    async def employee(self, info: Info) -> Employee:
        return present(await load_employee(info, self.row.employee_id))


@registered
@strawberry.type
class Document(Node, FromRow):
    filename: str
    content_type: str
    size: int = strawberry.field(description="Bytes. At most 10 MB (10 * 1024 * 1024).")
    created_at: datetime
    restricted: bool = strawberry.field(description=(
        "When restricted, only the grants (and company admins) may see, download or attach "
        "it."))
    download_url: str = strawberry.field(description="Authenticated download path on this server.")
    row: strawberry.Private[models.Document]
    # The candidate a message carried this document to: a document uploaded for a bulk
    # email is one row shared by every recipient's message, and belongs to none of them.
    recipient_id: strawberry.Private[uuid.UUID | None] = None

    @classmethod
    def from_row(cls, row: models.Document, **values: Any) -> Self:
        return super().from_row(row, download_url=download_path(row.id), **values)

    @strawberry.field
    async def uploaded_by(self, info: Info) -> Employee | None:
        return await load_employee(info, self.row.uploaded_by_id)

    @strawberry.field(graphql_type=lazy("Candidate", "schema.types.candidates"))
    async def candidate(self, info: Info) -> Node:
        candidate_id = self.row.candidate_id or self.recipient_id
        found = await load(info, "Candidate", candidate_id) if candidate_id else None
        if found is None:
            # The contract makes this field non-null; a template attachment (or a bulk
            # upload asked for by its own id) has no candidate, and says so in words.
            raise GraphQLError("This document belongs to no candidate: it is attached to a "
                               "template or was sent to many candidates.",
                               extensions={"code": "NO_CANDIDATE"})
        return found

    @strawberry.field
    async def grants(self, info: Info) -> list[DocumentGrant]:
        rows = await models.DocumentGrant.filter(document_id=self.row.id).order_by("id")
        return [DocumentGrant(level=r.level, row=r) for r in rows]


async def load_documents(info: Info, qs: QuerySet[models.Document]) -> list[Document]:
    rows = await visible_query(qs, info.context.viewer).order_by("created_at", "id")
    return [Document.from_row(r) for r in rows]


@node_resolver("Document")
async def load_document(info: Info, pk: uuid.UUID) -> Document | None:
    rows = await load_documents(info, models.Document.filter(id=pk))
    return rows[0] if rows else None
