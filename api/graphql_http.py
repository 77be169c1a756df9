"""GraphQL over HTTP (the spec's application/graphql-response+json).

When a client accepts application/graphql-response+json (and prefers it to
application/json), the answer uses that media type, and a request error (the document
does not parse or validate, or the variables do not coerce: errors, no path, no data)
gets status 400 and no `data` entry. Clients that accept only application/json get the
legacy behaviour: 200 with the GraphQL response.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

GRAPHQL_RESPONSE = "application/graphql-response+json"


def prefers_graphql_response(accept: str) -> bool:
    best: tuple[float, int] | None = None
    json_q: float | None = None
    for index, item in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media.lower() == GRAPHQL_RESPONSE and q > 0:
            best = (q, index)
        elif media.lower() == "application/json":
            json_q = q
    if best is None:
        return False
    return json_q is None or best[0] >= json_q


def is_request_error(body: dict[str, Any]) -> bool:
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors or body.get("data") is not None:
        return False
    return all(isinstance(e, dict) and not e.get("path") for e in errors)


class GraphQLResponseNegotiation:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not prefers_graphql_response(headers.get(b"accept", b"").decode("latin-1")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._finish(start, b"".join(chunks), send)
                return
            await send(message)

        await self.app(scope, receive, capture)

    async def _finish(self, start: Message | None, body: bytes, send: Send) -> None:
        assert start is not None
        status = start["status"]
        raw_headers = [(k, v) for k, v in start.get("headers", [])
                       if k.lower() not in (b"content-type", b"content-length")]
        ctype = dict(start.get("headers", [])).get(b"content-type", b"")
        if ctype.startswith(b"application/json"):
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if isinstance(payload, dict) and ("data" in payload or "errors" in payload):
                if is_request_error(payload):
                    payload.pop("data", None)
                    status = 400 if status < 400 else status
                    body = json.dumps(payload).encode()
                ctype = f"{GRAPHQL_RESPONSE}; charset=utf-8".encode()
        raw_headers += [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
