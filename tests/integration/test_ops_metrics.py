"""/metrics on real parts (SQLite and PostgreSQL, Redis, the arq worker, an SMTP sink)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import Route

from api.metrics import metrics_endpoint
from core.metrics import parse_exposition, quantile
from core.models import Candidate, InboundEmail
from core.services import messaging
from schema.metrics import GraphQLMetrics
from tests.support.net import free_port


class Scraper:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def text(self) -> str:
        r = await self.client.get("/metrics")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        return r.text

    async def values(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(name, tuple(sorted(labels.items()))): value
                for name, labels, value in parse_exposition(await self.text())}

    async def get(self, name: str, **labels: str) -> float | None:
        return (await self.values()).get((name, tuple(sorted(labels.items()))))


def _app() -> Starlette:
    """The real app when it serves /metrics, else a Starlette app with just the endpoint."""
    try:
        from api.app import create_app

        app = create_app(manage_db=False)
        if any(getattr(r, "path", None) == "/metrics" for r in app.routes):
            return app
    except ImportError:
        pass
    return Starlette(routes=[Route("/metrics", metrics_endpoint)])


@pytest.fixture
async def scraper(db: Any) -> AsyncIterator[Scraper]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Scraper(client)


async def test_metrics_follow_a_message_from_queue_to_sent(tenant, sink, run_worker, scraper):
    m = scraper
    assert await m.get("recruitmail_messages", status="QUEUED") == 0
    assert await m.get("recruitmail_messages", status="SENT") == 0
    assert await m.get("recruitmail_send_latency_recent_samples") == 0
    assert await m.get("recruitmail_metrics_source_up", source="database") == 1
    assert await m.get("recruitmail_metrics_source_up", source="redis") == 1

    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="de Vries", email="nina@example.org")
    for i in range(2):
        await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                     subject=f"Hello {i}", body="Text")
    assert await m.get("recruitmail_messages", status="QUEUED") == 2
    assert await m.get("recruitmail_queue_jobs") == 2
    assert await m.get("recruitmail_queue_jobs_ready") == 2
    assert (await m.get("recruitmail_oldest_queued_message_age_seconds") or 0) >= 0

    await run_worker()
    await sink.wait_for(2)
    values = await m.values()
    assert values[("recruitmail_messages", (("status", "SENT"),))] == 2
    assert values[("recruitmail_messages", (("status", "QUEUED"),))] == 0
    assert values[("recruitmail_queue_jobs", ())] == 0
    assert values[("recruitmail_oldest_queued_message_age_seconds", ())] == 0
    assert values[("recruitmail_send_latency_recent_samples", ())] == 2
    p50 = values[("recruitmail_send_latency_recent_seconds", (("quantile", "0.5"),))]
    p100 = values[("recruitmail_send_latency_recent_seconds", (("quantile", "1.0"),))]
    assert 0 <= p50 <= p100 < 60


async def test_inbound_outcomes_counted(db, scraper):
    before = await scraper.get("recruitmail_inbound_emails", outcome="REPLY")
    assert before == 0
    for outcome in ("REPLY", "REPLY", "BOUNCE"):
        await InboundEmail.create(mail_from="x@example.org", rcpt_to=["r@in.mail.test"],
                                  size=10, raw_mail=b"Subject: x\r\n\r\nx", outcome=outcome)
    assert await scraper.get("recruitmail_inbound_emails", outcome="REPLY") == 2
    assert await scraper.get("recruitmail_inbound_emails", outcome="BOUNCE") == 1
    assert await scraper.get("recruitmail_inbound_emails", outcome="ERROR") == 0


async def test_scrape_survives_redis_down(db, scraper, monkeypatch):
    from core.redis import close_redis
    from core.settings import reset_settings

    good = db.redis_url
    await close_redis()
    monkeypatch.setenv("RECRUITMAIL_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    try:
        values = await scraper.values()
        assert values[("recruitmail_metrics_source_up", (("source", "redis"),))] == 0
        assert values[("recruitmail_metrics_source_up", (("source", "database"),))] == 1
        assert ("recruitmail_queue_jobs", ()) not in values
        assert ("recruitmail_messages", (("status", "SENT"),)) in values
    finally:
        await close_redis()
        monkeypatch.setenv("RECRUITMAIL_REDIS_URL", good)
        reset_settings()


# --- GraphQL operation counters -----------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> str:
        return "fine"

    @strawberry.field
    def boom(self) -> str:
        raise ValueError("broken resolver")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self) -> bool:
        return True


def _ops(values: dict[Any, float], op: str, outcome: str) -> float:
    key = ("recruitmail_graphql_operations_total",
           tuple(sorted({"operation_type": op, "outcome": outcome}.items())))
    return values.get(key, 0.0)


async def test_graphql_operation_counters():
    from core.metrics import render_latest

    schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[GraphQLMetrics])

    async def scrape() -> dict[Any, float]:
        text = (await render_latest()).decode()
        return {(n, tuple(sorted(lb.items()))): v for n, lb, v in parse_exposition(text)}

    before = await scrape()
    assert (await schema.execute("{ ok }")).errors is None
    assert (await schema.execute("{ ok }")).errors is None
    assert (await schema.execute("{ boom }")).errors
    assert (await schema.execute("{ nope }")).errors  # validation error
    assert (await schema.execute("mutation { touch }")).errors is None
    after = await scrape()
    assert _ops(after, "query", "ok") - _ops(before, "query", "ok") == 2
    assert _ops(after, "query", "error") - _ops(before, "query", "error") == 2
    assert _ops(after, "mutation", "ok") - _ops(before, "mutation", "ok") == 1
    count = "recruitmail_graphql_operation_duration_seconds_count"
    assert (after[(count, (("operation_type", "query"),))]
            - before.get((count, (("operation_type", "query"),)), 0)) == 4
    assert after[("recruitmail_graphql_subscriptions_active", ())] == 0


def test_quantile_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert quantile(values, 0.5) == 5
    assert quantile(values, 0.9) == 9
    assert quantile(values, 0.99) == 10
    assert quantile(values, 1.0) == 10
    assert quantile([3.0], 0.5) == 3


async def test_real_app_wires_metrics(db):
    """Once api/app.py mounts /metrics and schema/ adds GraphQLMetrics, both are live."""
    from api.app import create_app
    from schema import schema as product_schema

    app = create_app(manage_db=False)
    if not any(getattr(r, "path", None) == "/metrics" for r in app.routes):
        pytest.skip("api/app.py does not route /metrics yet")
    if GraphQLMetrics not in product_schema.extensions:
        pytest.skip("schema/__init__.py does not add GraphQLMetrics yet")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        m = Scraper(client)
        before = await m.values()
        r = await client.post("/graphql", json={"query": "{ viewer { id } }"})
        assert r.status_code == 200
        after = await m.values()
    assert _ops(after, "query", "error") - _ops(before, "query", "error") == 1
