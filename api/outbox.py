"""The /outbox page: a live view of the company's outgoing mail, built on the public API.

The page is static HTML plus ``api/static/outbox/outbox.js`` and ``outbox.css`` (no build
step, no CDN). Everything it shows comes from /graphql: a query over HTTP for the snapshot,
graphql-transport-ws subscriptions for what changes, ``retryMessage`` and the cancel
mutations for its buttons. It therefore needs nothing from the server but this route: the
token is typed in (kept in sessionStorage) or handed over in the URL fragment
(``/outbox#token=…``, which ``recruitmail dev`` prints; fragments are never sent to a
server and the script removes it from the address bar at once).
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse

from api.graphiql import STATIC_PREFIX

OUTBOX_PATH = "/outbox"
# Bumped with the files in api/static/outbox/, appended as ?v= so browsers never mix versions.
ASSETS_VERSION = "outbox-1"

# No inline script or style, no third-party origin; the websocket is same-origin ('self').
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)


def _asset(name: str) -> str:
    return f"{STATIC_PREFIX}/outbox/{name}?v={ASSETS_VERSION}"


def outbox_html(endpoint: str = "/graphql") -> str:
    attr = html.escape
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <meta name="referrer" content="no-referrer">
    <title>Outbox · recruitmail</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{attr(_asset("outbox.css"))}">
  </head>
  <body>
    <a class="skip" href="#main">Skip to content</a>
    <div id="outbox" data-endpoint="{attr(endpoint)}">
      <noscript>The outbox page needs JavaScript. The API itself is at
        {attr(endpoint)}.</noscript>
    </div>
    <script src="{attr(_asset("outbox.js"))}"></script>
  </body>
</html>
"""


async def outbox_page(request: Request) -> HTMLResponse:
    return HTMLResponse(
        outbox_html(),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )
