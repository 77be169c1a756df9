"""/metrics (Prometheus text format 0.0.4).

Wiring:

    # api/app.py
    from api.metrics import metrics_endpoint
    routes = [..., Route("/metrics", metrics_endpoint)]

The GraphQL operation counters are kept by schema.metrics.GraphQLMetrics (a strawberry
extension the schema adds itself). What is exposed and how it is computed: core/metrics.py.
"""

from __future__ import annotations

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response

from core.metrics import render_latest

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # "text/plain; version=0.0.4; charset=utf-8"


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics. Always 200 while the process runs; see recruitmail_metrics_source_up."""
    body = await render_latest()
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})


__all__ = ["CONTENT_TYPE", "metrics_endpoint"]
