"""The ASGI app: GraphQL over HTTP and graphql-transport-ws, health checks, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from api.auth import authenticate, bearer_token, token_from_params
from api.cors import CORS, parse_origins
from api.csrf import require_preflight_for_multipart
from api.documents import download
from api.graphiql import OfflineGraphQL, static_routes
from api.graphql_http import GraphQLResponseNegotiation
from api.health import healthz, readyz
from api.live_ws import LiveTransportWSHandler
from api.metrics import metrics_endpoint
from api.outbox import OUTBOX_PATH, outbox_page
from api.request_id import RequestIdMiddleware
from core.db import close_db, init_db
from core.redis import close_redis
from core.settings import get_settings
from schema import schema
from schema.context import Context
from schema.live import close_hubs


class GraphQLApp(OfflineGraphQL[Context, None]):
    # Shared subscription executions and bounded queues per connection (api/live_ws.py).
    graphql_transport_ws_handler_class = LiveTransportWSHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # strawberry answers a refused request in plain text; a GraphQL client reads JSON.
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as e:
            response = http_error(e.status_code, e.reason)
        except StarletteHTTPException as e:  # the multipart parser's refusals
            response = http_error(e.status_code, str(e.detail))
        await response(scope, receive, send)

    def parse_json(self, data: str | bytes) -> Any:
        """The request body (or a multipart `operations` / `map` part) as a JSON object."""
        try:
            parsed = self.decode_json(data)
        except UnicodeDecodeError as e:
            raise HTTPException(400, "The request body is not UTF-8.") from e
        except ValueError as e:
            raise HTTPException(400, "Unable to parse request body as JSON.") from e
        if not isinstance(parsed, dict):
            raise HTTPException(400, "The request body must be a JSON object "
                                     '({"query": …, "variables": …}).')
        return parsed

    async def get_context(self, request: Request | WebSocket,
                          response: Response | WebSocket) -> Context:
        if isinstance(request, WebSocket):
            # Authenticated on connection_init (on_ws_connect), once per connection.
            return Context(request=request, response=response, websocket=True)
        context = Context(request=request, response=response)
        token = bearer_token(request.headers.get("authorization"))
        signed_in = await authenticate(token)
        if signed_in is not None:
            context.sign_in(*signed_in)
        elif request.headers.get("authorization"):
            context.token_rejected = True
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        token = token_from_params(context.connection_params)
        if token is None and isinstance(context.request, WebSocket):
            token = bearer_token(context.request.headers.get("authorization"))
        signed_in = await authenticate(token)
        if signed_in is None:
            raise ConnectionRejectionError()  # closes with 4403 Forbidden
        context.sign_in(*signed_in)
        return await super().on_ws_connect(context)


def http_error(status: int, reason: str) -> Response:
    """A request refused before execution, as a GraphQL response with one error."""
    code = {405: "METHOD_NOT_ALLOWED", 404: "NOT_FOUND", 413: "TOO_LARGE"}.get(status, "BAD_REQUEST")
    headers = {"Allow": "GET, POST"} if status == 405 else None
    return JSONResponse({"errors": [{"message": reason, "extensions": {"code": code}}]},
                        status_code=status, headers=headers)


def graphql_app() -> GraphQLApp:
    origins = sorted(parse_origins(get_settings().allowed_origins))
    return GraphQLApp(
        schema,
        graphql_ide="graphiql",
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        multipart_uploads_enabled=True,
        allowed_origins=origins,
    )


def create_app(*, manage_db: bool = True) -> Starlette:
    """The api process. manage_db=False when the caller already opened the ORM (tests, dev)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tortoise = await init_db() if manage_db else None
        try:
            yield
        finally:
            await close_hubs()
            await close_redis()
            if tortoise is not None:
                await close_db(tortoise)

    gql = graphql_app()
    origins = parse_origins(get_settings().allowed_origins)
    return Starlette(
        routes=[
            Route("/graphql", CORS(GraphQLResponseNegotiation(require_preflight_for_multipart(gql)),
                                   origins)),
            WebSocketRoute("/graphql", gql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/documents/{gid}", download, methods=["GET", "OPTIONS"],
                  middleware=[Middleware(CORS, origins=origins)]),
            Route("/metrics", metrics_endpoint),
            Route(OUTBOX_PATH, outbox_page),
            *static_routes(),
        ],
        lifespan=lifespan,
        middleware=[Middleware(RequestIdMiddleware)],
    )
