"""Company mail servers' limits (issue 13), from outside: pacing per minute and day,
421 throttling, at most so many connections. GraphQL, a real aiosmtpd server with limits
(tests/support/limited_smtp.py), the real arq worker. Every test runs on SQLite and on
PostgreSQL.

The "minute" and "day" of the limits are shortened by RECRUITMAIL_PACING_MINUTE_SECONDS /
_DAY_SECONDS where a test would otherwise take minutes; the code that runs is the same.
The server's settings and checks: test_company_smtp_settings.py."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any

import pytest

from core.models import BulkOperation, Company, Message, MessageEvent
from core.services import pacing
from tests.support.bulk_graphql import _applicants, _send_bulk
from tests.support.company_smtp import SETTINGS, S, _knobs
from tests.support.fixtures import drain_tenant
from tests.support.limited_smtp import LimitedServer, Limits, start_limited

BULK = """query($id: ID!) { bulkOperation(id: $id) { state sent failed expectedCompletionAt
  messages(first: 100) { edges { node { status attempts expectedSendAt } } } } }"""


async def _use(api: Any, tenant: Any, server: LimitedServer, **extra: Any) -> dict[str, Any]:
    out = (await api.gql(tenant, SETTINGS, input={
        "smtpHost": "127.0.0.1", "smtpPort": server.port, "smtpSecurity": "NONE", **extra}))[
        "updateCompanyEmailSettings"]
    assert out["errors"] == [], out["errors"]
    settings: dict[str, Any] = out["company"]["emailSettings"]
    return settings


async def _history(tenant: Any) -> str:
    """Each message's status and events, for a failing assertion's message."""
    lines = []
    for m in await Message.filter(company_id=tenant.company.id).order_by("created_at"):
        lines.append(f"{m.id} {m.status} attempts={m.attempts} next={m.next_attempt_at}")
        for e in await MessageEvent.filter(message_id=m.id).order_by("id"):
            lines.append(f"    {e.at} {e.previous_status}->{e.status} {e.detail}")
    return "\n".join(lines)


async def _delivered(server: LimitedServer, tenant: Any, count: int) -> None:
    try:
        await server.wait_for(count)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await _history(tenant)}") from None


async def _bulk(api: Any, tenant: Any, n: int) -> str:
    applicants = await _applicants(tenant, n)
    out = await _send_bulk(api, tenant, applicants)
    assert out["errors"] == []
    op_id: str = out["bulkOperation"]["id"]
    return op_id


async def test_a_bulk_through_a_paced_server_goes_out_spread_and_all_sent(
        api, tenant, run_worker, local_servers, monkeypatch):
    # 10 a "minute" of 6 s: the same semantics as 60 a minute, ten times faster.
    _knobs(monkeypatch, pacing_minute_seconds="6")
    server = await start_limited(Limits(per_window=10, window_seconds=6))
    try:
        settings = await _use(api, tenant, server, smtpMaxPerMinute=10)
        assert settings["smtpMaxPerMinute"] == 10
        op_id = await _bulk(api, tenant, 16)
        # Two workers at once (as two processes would): the limit is the server's, not each's.
        await asyncio.gather(drain_tenant(run_worker, tenant), drain_tenant(run_worker, tenant))
        await _delivered(server, tenant, 16)
    finally:
        await server.close()
    msgs = await Message.filter(company_id=tenant.company.id)
    assert {m.status for m in msgs} == {S.SENT}
    assert all(m.attempts == 1 for m in msgs)
    # The server never had to refuse, and no window of its "minute" held more than 10.
    assert server.stats.rate_refusals == 0
    assert server.max_in_window(6) <= 10
    # The mails that had to wait were told when they would go, and so was the operation.
    held = [m for m in msgs if m.expected_send_at is not None]
    assert len(held) >= 5
    data = (await api.gql(tenant, BULK, id=op_id))["bulkOperation"]
    assert (data["state"], data["sent"], data["failed"]) == ("COMPLETED", 16, 0)
    assert data["expectedCompletionAt"] is not None
    assert sum(1 for e in data["messages"]["edges"] if e["node"]["expectedSendAt"]) == len(held)
    history = await MessageEvent.filter(message_id__in=[m.id for m in held]).values_list(
        "detail", flat=True)
    assert any("held back by the mail server's limits" in (d or "") for d in history)


async def test_a_server_answering_421_for_a_while_gets_everything_without_failures(
        api, tenant, run_worker, local_servers, monkeypatch):
    # Two attempts only: had the throttling answers counted, every message would fail.
    _knobs(monkeypatch, max_attempts="2")
    server = await start_limited(Limits())
    try:
        await _use(api, tenant, server)
        server.limits.busy_until = time.monotonic() + 3.0
        op_id = await _bulk(api, tenant, 6)
        await drain_tenant(run_worker, tenant)
        await _delivered(server, tenant, 6)
    finally:
        await server.close()
    assert server.stats.busy_refusals >= 1
    msgs = await Message.filter(company_id=tenant.company.id)
    assert {m.status for m in msgs} == {S.SENT}
    assert all(m.attempts == 1 for m in msgs)  # throttling is not an attempt
    data = (await api.gql(tenant, BULK, id=op_id))["bulkOperation"]
    assert (data["state"], data["failed"]) == ("COMPLETED", 0)
    history = await MessageEvent.filter(message_id__in=[m.id for m in msgs]).values_list(
        "detail", flat=True)
    assert any("asked to slow down" in (d or "") and "421 4.7.0" in (d or "")
               for d in history)
    # The admin sees the server's last failure once, on the settings.
    company = (await api.gql(tenant, "{ company { emailSettings { lastError lastErrorAt } } }"))[
        "company"]["emailSettings"]
    assert "421 4.7.0" in company["lastError"] and company["lastErrorAt"]


async def test_three_connections_at_most_across_two_workers(
        api, tenant, run_worker, local_servers):
    server = await start_limited(Limits(max_connections=3))
    try:
        await _use(api, tenant, server, smtpMaxConnections=3)
        await _bulk(api, tenant, 40)
        # Two workers at once, each with its own pools (as two processes would have).
        await asyncio.gather(drain_tenant(run_worker, tenant), drain_tenant(run_worker, tenant))
        await _delivered(server, tenant, 40)
    finally:
        await server.close()
    assert server.stats.max_open <= 3
    assert server.stats.refused_connections == 0
    msgs = await Message.filter(company_id=tenant.company.id)
    assert {m.status for m in msgs} == {S.SENT}


async def test_a_days_quota_moves_the_rest_to_the_next_window(
        api, tenant, run_worker, local_servers, monkeypatch):
    # A "day" of 4 s with 3 recipients: the fourth and fifth go in the next window.
    _knobs(monkeypatch, pacing_day_seconds="4")
    server = await start_limited(Limits())
    try:
        settings = await _use(api, tenant, server, smtpMaxPerDay=3)
        assert settings["smtpMaxPerDay"] == 3
        op_id = await _bulk(api, tenant, 5)
        await drain_tenant(run_worker, tenant)
        await _delivered(server, tenant, 5)
    finally:
        await server.close()
    assert server.max_in_window(4) <= 3
    msgs = await Message.filter(company_id=tenant.company.id)
    assert {m.status for m in msgs} == {S.SENT} and all(m.attempts == 1 for m in msgs)
    assert sum(1 for m in msgs if m.expected_send_at is not None) >= 2
    bulk = await BulkOperation.get(id=(await Message.first()).bulk_operation_id)
    assert bulk.expected_completion_at is not None
    assert (await api.gql(tenant, BULK, id=op_id))["bulkOperation"]["state"] == "COMPLETED"


async def test_limits_come_back_from_the_database_when_redis_lost_them(tenant, local_servers):
    from datetime import UTC, datetime

    from core.redis import get_redis, key

    company = await Company.get(id=tenant.company.id)
    company.smtp_host, company.smtp_max_per_day, company.smtp_max_per_minute = "mx.x", 3, 100
    await company.save()
    cand = await _applicants(tenant, 1)
    for _ in range(3):
        await Message.create(company_id=company.id, candidate_id=cand[0].candidate_id,
                             kind="MESSAGE", status=S.SENT, from_name="A",
                             from_address="a@acme.example", to_addrs=["x@example.org"],
                             subject="s", body="b", rfc_message_id="x@y",
                             sent_at=datetime.now(UTC))
    owner = pacing.owner_key(company)
    limits = pacing.limits_of(company)
    # Redis knows nothing of this server yet: the counts are rebuilt from the SENT times.
    assert await pacing.acquire(owner, company.id, limits) > 3600
    redis = get_redis()
    keys = [k async for k in redis.scan_iter(match=key("pace", "*"))]
    assert keys
    await redis.delete(*keys)  # Redis lost them
    assert await pacing.acquire(owner, company.id, limits) > 3600
    # A server without the day limit takes the mail.
    assert await pacing.acquire(owner, company.id, pacing.Limits(connections=3)) == 0


@pytest.mark.skipif(not os.environ.get("RECRUITMAIL_TEST_SLOW"),
                    reason="real-time pacing figures: RECRUITMAIL_TEST_SLOW=1 (about 2 minutes)")
async def test_real_time_figures(api, tenant, run_worker, local_servers, monkeypatch):
    """The issue's checks at real scale, figures printed (run with -s): 60 a minute and a
    bulk of 40; then a server answering 421 4.7.0 to everything for 20 s."""
    server = await start_limited(Limits(per_window=60, window_seconds=60))
    start = time.monotonic()
    try:
        await _use(api, tenant, server, smtpMaxPerMinute=60)
        await _bulk(api, tenant, 40)
        await drain_tenant(run_worker, tenant, timeout=150)
    finally:
        await server.close()
    msgs = await Message.filter(company_id=tenant.company.id)
    arrivals = sorted(server.stats.arrivals)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    print(f"\n60/min, bulk of 40: SENT {sum(m.status == S.SENT for m in msgs)}, FAILED "
          f"{sum(m.status == S.FAILED for m in msgs)}, first to last {arrivals[-1] - arrivals[0]:.1f} s"
          f" (from the start {arrivals[-1] - start:.1f} s), gaps {min(gaps):.2f}-{max(gaps):.2f} s,"
          f" held back {sum(m.expected_send_at is not None for m in msgs)}, most in 60 s "
          f"{server.max_in_window(60)}, attempts at most {max(m.attempts for m in msgs)}")
    assert {m.status for m in msgs} == {S.SENT} and server.max_in_window(60) <= 60

    await Message.filter(company_id=tenant.company.id).delete()
    server = await start_limited(Limits())
    try:
        await _use(api, tenant, server, smtpMaxPerMinute=None)
        server.limits.busy_until = time.monotonic() + 20
        start = time.monotonic()
        await _bulk(api, tenant, 30)
        await drain_tenant(run_worker, tenant, timeout=150)
    finally:
        await server.close()
    msgs = await Message.filter(company_id=tenant.company.id)
    arrivals = sorted(server.stats.arrivals)
    print(f"421 for 20 s, bulk of 30: SENT {sum(m.status == S.SENT for m in msgs)}, FAILED "
          f"{sum(m.status == S.FAILED for m in msgs)}, refused {server.stats.busy_refusals} "
          f"times, all in {arrivals[-1] - start:.1f} s, attempts at most "
          f"{max(m.attempts for m in msgs)}")
    assert {m.status for m in msgs} == {S.SENT} and max(m.attempts for m in msgs) == 1
