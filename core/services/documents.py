"""Documents: streamed uploads with a hard size cap, restricted access, attaching again."""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from core.blobs import BlobWriter, delete_blob
from core.errors import ErrorCode, FieldError, InputError
from core.models import Candidate, Document, DocumentGrant, Employee
from core.models.enums import DocumentAccessLevel

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
_SAFE_NAME = re.compile(r"[^\w.\- ()\[\]+,@]+", re.UNICODE)


def clean_filename(name: str | None) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE_NAME.sub("_", base).strip(" .") or "attachment"
    return base[:200]


_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def guess_type(filename: str, declared: str | None) -> str:
    # A declared type is kept only when it is a plain token/token (no NUL, no controls).
    if declared and len(declared) < 200:
        media = declared.split(";", 1)[0].strip().lower()
        if _MEDIA_TYPE.fullmatch(media):
            return media
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


@dataclass
class StagedFile:
    """Bytes already on disk (under a fresh blob key), not yet a Document row."""

    filename: str
    content_type: str
    size: int
    sha256: str
    blob_key: str

    def discard(self) -> None:
        delete_blob(self.blob_key)


async def stage_stream(
    chunks: AsyncIterator[bytes], *, filename: str | None, content_type: str | None,
    path: tuple[str, ...], limit: int = MAX_DOCUMENT_BYTES,
) -> StagedFile:
    """Write a stream to the blob store; over `limit` → TOO_LARGE and nothing kept."""
    writer = BlobWriter(limit)
    try:
        async for chunk in chunks:
            if not writer.write(chunk):
                writer.abort()
                raise InputError(FieldError(
                    ErrorCode.TOO_LARGE,
                    f"{clean_filename(filename)} is larger than {limit // (1024 * 1024)} MB.", path))
        key = writer.commit()
    except InputError:
        raise
    except BaseException:
        writer.abort()
        raise
    name = clean_filename(filename)
    return StagedFile(name, guess_type(name, content_type), writer.size, writer.sha.hexdigest(), key)


async def stage_bytes(data: bytes, *, filename: str | None, content_type: str | None,
                      path: tuple[str, ...] = (), limit: int = MAX_DOCUMENT_BYTES) -> StagedFile:
    async def one() -> AsyncIterator[bytes]:
        yield data

    return await stage_stream(one(), filename=filename, content_type=content_type, path=path,
                              limit=limit)


def discard_all(files: Sequence[StagedFile]) -> None:
    for f in files:
        f.discard()


async def create_documents(
    staged: Sequence[StagedFile], *, company_id: uuid.UUID, candidate_id: uuid.UUID | None,
    uploaded_by: uuid.UUID | None,
) -> list[Document]:
    """Document rows for staged files (call inside the caller's transaction)."""
    docs = []
    for f in staged:
        docs.append(await Document.create(
            company_id=company_id, candidate_id=candidate_id, filename=f.filename,
            content_type=f.content_type, size=f.size, sha256=f.sha256, blob_key=f.blob_key,
            uploaded_by_id=uploaded_by,
        ))
    return docs


# --- access ---------------------------------------------------------------------------------


async def can_access(employee: Employee, doc: Document,
                     level: DocumentAccessLevel = DocumentAccessLevel.VIEW) -> bool:
    """Restricted documents: only the grants (EDIT implies VIEW) and company admins."""
    if doc.company_id != employee.company_id:
        return False
    if not doc.restricted or employee.is_admin:
        return True
    grant = await DocumentGrant.get_or_none(document_id=doc.id, employee_id=employee.id)
    if grant is None:
        return False
    return level == DocumentAccessLevel.VIEW or grant.level == DocumentAccessLevel.EDIT


def visible_query(qs: QuerySet[Document], employee: Employee) -> QuerySet[Document]:
    """The same rule as can_access, as a query: the company's unrestricted documents, plus
    restricted ones granted to the employee; admins see all."""
    qs = qs.filter(company_id=employee.company_id)
    if employee.is_admin:
        return qs
    return qs.filter(Q(restricted=False) | Q(grants__employee_id=employee.id)).distinct()


async def visible_documents(employee: Employee, docs: Sequence[Document]) -> list[Document]:
    """Filter a list to what the employee may see (one query for the grants)."""
    restricted_ids = [d.id for d in docs if d.restricted]
    granted: set[uuid.UUID] = set()
    if restricted_ids and not employee.is_admin:
        granted = set(await DocumentGrant.filter(
            document_id__in=restricted_ids, employee_id=employee.id
        ).values_list("document_id", flat=True))  # type: ignore[arg-type]
    return [
        d for d in docs
        if d.company_id == employee.company_id and (
            not d.restricted or employee.is_admin or d.id in granted)
    ]


async def get_visible(employee: Employee, doc_id: uuid.UUID | None) -> Document | None:
    if doc_id is None:
        return None
    doc = await Document.get_or_none(id=doc_id, company_id=employee.company_id)
    if doc is None or not await can_access(employee, doc):
        return None
    return doc


async def resolve_attachable(
    employee: Employee, ids: Sequence[uuid.UUID | None], *, candidate_id: uuid.UUID | None,
    path: tuple[str, ...],
) -> tuple[list[Document], list[FieldError]]:
    """Documents to attach again: same company, visible to the employee, and (when given)
    belonging to this candidate or to no candidate (template documents)."""
    docs: list[Document] = []
    errors: list[FieldError] = []
    for i, did in enumerate(ids):
        doc = await get_visible(employee, did)
        if doc is None or (candidate_id is not None and doc.candidate_id not in (None, candidate_id)):
            errors.append(FieldError(ErrorCode.NOT_FOUND, "No such document.", (*path, str(i))))
        elif doc.id not in {d.id for d in docs}:
            docs.append(doc)
    return docs, errors


# --- operations ---------------------------------------------------------------------------


async def upload_document(*, employee: Employee, candidate_id: uuid.UUID | None,
                          staged: StagedFile) -> Document:
    cand = None
    if candidate_id is not None:
        cand = await Candidate.get_or_none(id=candidate_id, company_id=employee.company_id)
    if cand is None:
        staged.discard()
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such candidate.",
                                    ("input", "candidateId")))
    try:
        async with in_transaction():
            [doc] = await create_documents([staged], company_id=employee.company_id,
                                           candidate_id=cand.id, uploaded_by=employee.id)
    except BaseException:
        staged.discard()
        raise
    return doc


async def set_document_access(
    *, employee: Employee, document_id: uuid.UUID | None, restricted: bool,
    grants: Sequence[tuple[uuid.UUID | None, DocumentAccessLevel]],
) -> Document:
    doc = None
    if document_id is not None:
        doc = await Document.get_or_none(id=document_id, company_id=employee.company_id)
    if doc is None or not await can_access(employee, doc):
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such document.", ("input", "documentId")))
    if not await can_access(employee, doc, DocumentAccessLevel.EDIT):
        raise InputError(FieldError(ErrorCode.FORBIDDEN, "You may not change this document's access.",
                                    ("input", "documentId")))
    errors: list[FieldError] = []
    resolved: dict[uuid.UUID, DocumentAccessLevel] = {}
    for i, (eid, level) in enumerate(grants):
        emp = await Employee.get_or_none(id=eid, company_id=employee.company_id) if eid else None
        if emp is None:
            errors.append(FieldError(ErrorCode.NOT_FOUND, "No such employee.",
                                     ("input", "grants", str(i), "employeeId")))
        else:
            resolved[emp.id] = level
    if errors:
        raise InputError(errors)
    async with in_transaction():
        await Document.filter(id=doc.id).update(restricted=restricted)
        await DocumentGrant.filter(document_id=doc.id).delete()
        if resolved:
            await DocumentGrant.bulk_create([
                DocumentGrant(document_id=doc.id, employee_id=eid, level=level)
                for eid, level in resolved.items()
            ])
    await doc.refresh_from_db()
    return doc
