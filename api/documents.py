"""GET /documents/{id}: the bytes of a document, for a signed-in employee who may see it."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from api.auth import authenticate, bearer_token
from core.blobs import blob_path
from core.ids import from_global_id
from core.services.documents import get_visible


async def download(request: Request) -> Response:
    signed_in = await authenticate(bearer_token(request.headers.get("authorization")))
    if signed_in is None:
        sent = bool(request.headers.get("authorization"))
        return JSONResponse(
            {"error": "UNAUTHENTICATED",
             "message": "The bearer token is invalid or expired." if sent
             else "Authentication required: send Authorization: Bearer <token>."},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"' if sent else "Bearer"})
    employee, _ = signed_in
    parsed = from_global_id(str(request.path_params["gid"]))
    doc = None
    if parsed is not None and parsed[0] == "Document":
        doc = await get_visible(employee, parsed[1])
    # Another company's, a restricted or a missing document all read the same.
    if doc is None:
        return JSONResponse({"error": "NOT_FOUND"}, status_code=404)
    path = blob_path(doc.blob_key)
    if not path.exists():
        return JSONResponse({"error": "NOT_FOUND"}, status_code=404)
    return FileResponse(
        path, media_type=doc.content_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
                 "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})
