"""The ASGI app: GraphQL over HTTP and graphql-transport-ws, health checks, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from api.auth import authenticate, bearer_token, token_from_params
from api.csrf import require_preflight_for_multipart
from api.documents import download
from api.graphiql import OfflineGraphQL, static_routes
from api.graphql_http import GraphQLResponseNegotiation
from api.health import healthz, readyz
from api.live_ws import LiveTransportWSHandler
from api.metrics import metrics_endpoint
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

    async def get_context(self, request: Request | WebSocket,
                          response: Response | WebSocket) -> Context:
        if isinstance(request, WebSocket):
            # Authenticated on connection_init (on_ws_connect), once per connection.
            return Context(request=request, response=response, websocket=True)
        context = Context(request=request, response=response)
        signed_in = await authenticate(bearer_token(request.headers.get("authorization")))
        if signed_in is not None:
            context.sign_in(*signed_in)
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


def graphql_app() -> GraphQLApp:
    origins = [o.strip() for o in get_settings().allowed_origins.split(",") if o.strip()]
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
    return Starlette(
        routes=[
            Route("/graphql", GraphQLResponseNegotiation(require_preflight_for_multipart(gql))),
            WebSocketRoute("/graphql", gql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/documents/{gid}", download),
            Route("/metrics", metrics_endpoint),
            *static_routes(),
        ],
        lifespan=lifespan,
        middleware=[Middleware(RequestIdMiddleware)],
    )
