"""CSRF defence for GraphQL multipart uploads.

A browser can POST multipart/form-data cross-site without a CORS preflight, so such a
request must carry a header no simple request can set (the GraphQL multipart request
spec's recommendation; the names Apollo clients send are accepted too).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

PREFLIGHT_HEADERS = (b"graphql-require-preflight", b"apollo-require-preflight",
                     b"x-apollo-operation-name")


class require_preflight_for_multipart:
    """Wraps an ASGI app (a class, so Starlette's Route treats it as an ASGI app)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            headers = dict(scope.get("headers") or [])
            ctype = headers.get(b"content-type", b"").lower()
            if ctype.startswith(b"multipart/form-data") and not any(
                    h in headers for h in PREFLIGHT_HEADERS):
                body = json.dumps({"errors": [{
                    "message": "Multipart requests need a GraphQL-Require-Preflight (or "
                               "Apollo-Require-Preflight) header (CSRF protection).",
                    "extensions": {"code": "BAD_REQUEST"}}]}).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
