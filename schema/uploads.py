"""GraphQL multipart uploads → staged files (streamed to the blob store, 10 MB cap each)."""

from collections.abc import AsyncIterator, Sequence
from typing import Any

from core.errors import ErrorCode, FieldError, InputError
from core.services.documents import StagedFile, discard_all, stage_stream
from schema.errors import not_found
from schema.relay import uuid_of

CHUNK = 64 * 1024


async def _chunks(upload: Any) -> AsyncIterator[bytes]:
    while True:
        chunk = await upload.read(CHUNK)
        if not chunk:
            return
        yield chunk


async def stage_uploads(uploads: Sequence[Any] | None, *path: str) -> list[StagedFile]:
    """Stage every upload; any error (e.g. TOO_LARGE) removes what was staged and raises."""
    staged: list[StagedFile] = []
    errors: list[FieldError] = []
    for i, upload in enumerate(uploads or []):
        try:
            staged.append(await stage_stream(
                _chunks(upload), filename=getattr(upload, "filename", None),
                content_type=getattr(upload, "content_type", None), path=(*path, str(i))))
        except InputError as exc:
            errors += exc.errors
        except BaseException:
            discard_all(staged)
            raise
    if errors:
        discard_all(staged)
        raise InputError(errors)
    return staged


def ids_or_errors(values: Sequence[str] | None, type_name: str,
                  *path: str) -> tuple[list[Any], list[FieldError]]:
    """Global ids → uuids; a malformed or wrong-type id is NOT_FOUND at its index."""
    out: list[Any] = []
    errors: list[FieldError] = []
    for i, v in enumerate(values or []):
        pk = uuid_of(v, type_name)
        if pk is None:
            errors.append(FieldError(ErrorCode.NOT_FOUND, f"No such {type_name.lower()}.",
                                     (*path, str(i))))
        out.append(pk)
    return out, errors


def template_id_or_error(value: str | None, errors: list[FieldError]) -> Any:
    """The uuid of an optional templateId (None when not given); a NOT_FOUND error in
    `errors` when given but not a template id."""
    if value is None:
        return None
    pk = uuid_of(value, "EmailTemplate")
    if pk is None:
        errors.append(not_found("template", "input", "templateId"))
    return pk


def checked_template_id(value: str | None) -> tuple[Any, list[FieldError]]:
    """`template_id_or_error` for a mutation whose only id to check is its templateId: the
    uuid and the errors found (none or the one)."""
    errors: list[FieldError] = []
    return template_id_or_error(value, errors), errors
