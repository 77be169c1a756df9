"""CORS for /graphql and document downloads: what lets an SPA on another origin call the API.

Origins come from ``RECRUITMAIL_ALLOWED_ORIGINS`` (comma-separated, compared exactly after
the normalisation browsers apply: lower-case scheme and host, no default port); ``*``
allows every origin, only when it is listed. Authentication is a bearer token, never a
cookie, so no ``Access-Control-Allow-Credentials`` is sent. A request from an origin not
allowed gets no CORS header at all (the browser then refuses to hand the answer to the
page), and its preflight is answered 403 without them. Requests without ``Origin``
(curl, servers, same-origin GETs) are untouched.

Websocket handshakes are not CORS requests: strawberry checks their ``Origin`` against
the same list (``allowed_origins`` in api/app.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.http.websocket_origin import normalize_origin

ALLOWED_METHODS = ("GET", "POST", "OPTIONS")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Accept", "GraphQL-Require-Preflight",
                   "Apollo-Require-Preflight", "X-Apollo-Operation-Name", "X-Request-ID")
# What a page may read from an answer besides the CORS-safelisted headers.
EXPOSED_HEADERS = ("X-Request-ID", "Content-Disposition", "WWW-Authenticate")
MAX_AGE_SECONDS = 600


def parse_origins(value: str) -> frozenset[str]:
    """``RECRUITMAIL_ALLOWED_ORIGINS`` as a set of normalised origins (``*`` kept as is)."""
    origins: set[str] = set()
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if item == "*":
            origins.add("*")
            continue
        normal = normalize_origin(item)
        if normal is not None:
            origins.add(normal)
    return frozenset(origins)


class CORS:
    """ASGI middleware for the routes that serve cross-origin pages (a class for Route)."""

    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    def allows(self, origin: str) -> bool:
        if "*" in self.origins:
            return True
        normal = normalize_origin(origin)
        return normal is not None and normal in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self.allows(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(send, origin if allowed else None,
                                  headers["access-control-request-method"])
            return
        if not allowed:
            await self.app(scope, receive, send)
            return
        cors = self._headers(origin)
        cors.append((b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode()))

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = [(k, v) for k, v in message.get("headers", [])
                       if not k.lower().startswith(b"access-control-")]
                message = {**message, "headers": [*raw, *cors]}
            await send(message)

        await self.app(scope, receive, with_cors)

    def _headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        value = "*" if "*" in self.origins else origin
        # The answer depends on Origin unless it is the same for every origin.
        vary = [] if value == "*" else [(b"vary", b"Origin")]
        return [(b"access-control-allow-origin", value.encode("latin-1")), *vary]

    async def _preflight(self, send: Send, origin: str | None, method: str) -> None:
        if origin is None or method.upper() not in ALLOWED_METHODS:
            body = b"Cross-origin request not allowed from this origin.\n"
            raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"vary", b"Origin")]
            status = 403
        else:
            body = b""
            raw = [*self._headers(origin),
                   (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
                   (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
                   (b"access-control-max-age", str(MAX_AGE_SECONDS).encode())]
            status = 204
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
