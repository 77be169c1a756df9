"""GraphiQL that works offline: every script and stylesheet is served by this service.

Strawberry's default IDE page loads React and GraphiQL from a CDN and stays on "Loading…"
without internet. This module serves pinned copies of the npm packages from
``api/static/graphiql/`` (see README.txt there for names, versions and licenses).

Wiring (in api/app.py):

    from api.graphiql import OfflineGraphQL, static_routes

    graphql_app = OfflineGraphQL(schema, ...same kwargs as strawberry.asgi.GraphQL...)
    routes = [..., Route("/graphql", graphql_app), WebSocketRoute("/graphql", graphql_app),
              *static_routes()]

A GET of /graphql with ``Accept: text/html`` (a browser) then shows GraphiQL; the headers
editor is prefilled with ``{"Authorization": "Bearer "}``; subscriptions use
graphql-transport-ws with the editor's headers as the connection_init payload.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Generic, TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from strawberry.asgi import GraphQL

ContextT = TypeVar("ContextT")
RootValueT = TypeVar("RootValueT")

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS_DIR = STATIC_DIR / "graphiql"
STATIC_PREFIX = "/static"
# Bumped with the vendored files; appended as ?v= so browsers never mix old and new assets.
ASSETS_VERSION = "graphiql-3.8.3-react-18.3.1-1"

DEFAULT_HEADERS = '{\n  "Authorization": "Bearer "\n}'
DEFAULT_QUERY = """# recruitmail GraphQL API
#
# Put your API token into the Headers tab below:  {"Authorization": "Bearer <token>"}
# Run with Ctrl-Enter. Subscriptions run over graphql-transport-ws with the same headers.

{
  __typename
}
"""

# No inline script, no third-party origin. GraphiQL (CodeMirror, emotion) sets inline styles;
# fonts and icons are data: URLs inside graphiql.min.css.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
)


def _asset(name: str) -> str:
    return f"{STATIC_PREFIX}/graphiql/{name}?v={ASSETS_VERSION}"


def graphiql_html(endpoint: str = "/graphql") -> str:
    """The GraphiQL page for ``endpoint`` (HTTP and graphql-transport-ws on the same path)."""
    attr = html.escape
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <title>recruitmail GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{attr(_asset("graphiql.min.css"))}">
    <style>
      html, body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; display: flex; }}
    </style>
  </head>
  <body>
    <div id="graphiql" class="graphiql-container"
         data-endpoint="{attr(endpoint)}"
         data-default-headers="{attr(DEFAULT_HEADERS)}"
         data-default-query="{attr(DEFAULT_QUERY)}">Loading…</div>
    <noscript>GraphiQL needs JavaScript. The API itself is at {attr(endpoint)}.</noscript>
    <script src="{attr(_asset("react.production.min.js"))}"></script>
    <script src="{attr(_asset("react-dom.production.min.js"))}"></script>
    <script src="{attr(_asset("graphiql.min.js"))}"></script>
    <script src="{attr(_asset("app.js"))}"></script>
  </body>
</html>
"""


def graphiql_response(endpoint: str = "/graphql") -> HTMLResponse:
    # The inline <style> block is covered by style-src 'unsafe-inline'.
    return HTMLResponse(
        graphiql_html(endpoint),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


class OfflineGraphQL(GraphQL[ContextT, RootValueT], Generic[ContextT, RootValueT]):
    """strawberry's ASGI GraphQL app, whose IDE page is the self-hosted GraphiQL.

    Strawberry calls ``render_graphql_ide`` for a GET without ``query`` whose Accept
    header asks for text/html, and only when ``graphql_ide`` is truthy (default
    "graphiql"); pass ``graphql_ide=None`` to turn the page off (then 404).
    Generic like its base: ``class GraphQLApp(OfflineGraphQL[Context, None])``.
    """

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_response(request.url.path)


def static_routes() -> list[Mount]:
    """Routes serving api/static/ under /static (GraphiQL assets at /static/graphiql/)."""
    return [Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="static")]


def assets() -> list[Path]:
    """The vendored files the page loads (tests check they exist and are served)."""
    return [ASSETS_DIR / n for n in ("react.production.min.js", "react-dom.production.min.js",
                                     "graphiql.min.js", "graphiql.min.css", "app.js")]

