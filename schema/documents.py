"""Documents: uploads (GraphQL multipart, streamed, 10 MB each) and access control."""

import strawberry
from strawberry.file_uploads import Upload

from core.errors import InputError
from core.models.enums import DocumentAccessLevel as Level
from core.services import documents as service
from schema.context import Info
from schema.enums import DocumentAccessLevel
from schema.errors import Payload, not_found, payload_of, user_errors
from schema.relay import uuid_of
from schema.types.documents import Document
from schema.uploads import stage_uploads


@strawberry.input
class UploadDocumentInput:
    candidate_id: strawberry.ID
    file: Upload


@strawberry.input
class DocumentGrantInput:
    employee_id: strawberry.ID
    level: DocumentAccessLevel  # type: ignore[valid-type]


@strawberry.input
class SetDocumentAccessInput:
    document_id: strawberry.ID
    restricted: bool
    grants: list[DocumentGrantInput] | None = strawberry.field(default_factory=list)


@strawberry.type
class DocumentPayload(Payload):
    document: Document | None = None


@strawberry.type
class DocumentMutation:
    @strawberry.mutation
    async def upload_document(self, info: Info, input: UploadDocumentInput) -> DocumentPayload:
        candidate_id = uuid_of(input.candidate_id, "Candidate")
        if candidate_id is None:
            return DocumentPayload(errors=user_errors([not_found("candidate", "input",
                                                                 "candidateId")]))
        try:
            [staged] = await stage_uploads([input.file], "input", "file")
            # stage_uploads names the index; a single file is just ["input", "file"].
            row = await service.upload_document(employee=info.context.viewer,
                                                candidate_id=candidate_id, staged=staged)
        except InputError as exc:
            for e in exc.errors:
                if e.field and e.field[:2] == ("input", "file"):
                    object.__setattr__(e, "field", ("input", "file"))
            return DocumentPayload(errors=user_errors(exc))
        return DocumentPayload(document=Document.from_row(row))

    @strawberry.mutation
    async def set_document_access(self, info: Info,
                                  input: SetDocumentAccessInput) -> DocumentPayload:
        grants = [(uuid_of(g.employee_id, "Employee"), Level(g.level)) for g in input.grants or []]
        return await payload_of(DocumentPayload, lambda: service.set_document_access(
            employee=info.context.viewer, document_id=uuid_of(input.document_id, "Document"),
            restricted=input.restricted, grants=grants),
            lambda row: DocumentPayload(document=Document.from_row(row)))
