"""Prometheus metrics: one registry, read at scrape time from the database and Redis.

What /metrics exposes (names are kept; more may be added):

From the database and Redis, gathered when scraped (``render_latest()``), so every api replica
reports the same values; aggregate them with ``max`` (not ``sum``) across replicas:

- ``recruitmail_messages{status}`` (gauge): Message rows per status (every status, 0 included).
- ``recruitmail_inbound_emails{outcome}`` (gauge): InboundEmail rows per outcome (every
  InboundOutcome, 0 included, plus any other stored value).
- ``recruitmail_oldest_queued_message_age_seconds`` (gauge): age of the oldest QUEUED
  message, 0 when none: the alert for "the worker is not draining".
- ``recruitmail_queue_jobs`` (gauge): ZCARD of the arq queue (``core.redis.queue_name()``):
  every job waiting, including retries deferred to a later time;
  ``recruitmail_queue_jobs_ready`` (gauge): those whose time has come.
- ``recruitmail_send_latency_recent_seconds{quantile}`` (gauge) with
  ``recruitmail_send_latency_recent_samples`` (gauge): send latency over the last
  ``LATENCY_SAMPLE`` (1,000) SENT events of the past ``LATENCY_WINDOW`` (24 h). Latency of one
  message = time of its SENT event minus ``max(created_at, scheduled_at)``, i.e. from the
  moment it was due to the relay's 250, retries included. This is a window over stored
  history, recomputed at each scrape, so it is a gauge per quantile (0.5, 0.9, 0.99, 1) and not
  a Prometheus histogram/summary (those must be cumulative counters). Nothing sent in the
  window: the quantile series are absent and samples is 0.
- ``recruitmail_metrics_source_up{source="database"|"redis"}`` (gauge): 1 when that source
  answered this scrape (within ``SOURCE_TIMEOUT``), else 0 and its series are left out; a
  scrape never fails because one source is down.

Process-local (this api process since it started; each replica its own, ``sum`` them):

- ``recruitmail_graphql_operations_total{operation_type, outcome="ok"|"error"}`` (counter):
  GraphQL operations finished; "error" = the response carried any GraphQL error (parse,
  validation, authentication, resolver). Subscriptions count when they end.
- ``recruitmail_graphql_operation_duration_seconds{operation_type}`` (histogram): wall time
  of queries and mutations (subscriptions are left out: their lifetime is not a latency).
- ``recruitmail_graphql_subscriptions_active`` (gauge): subscriptions open now.
- the standard ``process_*`` and ``python_*`` collectors.

The counters are incremented by ``schema.metrics.GraphQLMetrics`` (a strawberry extension).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from core.models.enums import InboundOutcome, MessageStatus

log = logging.getLogger(__name__)

PREFIX = "recruitmail"
LATENCY_SAMPLE = 1000
LATENCY_WINDOW = timedelta(hours=24)
LATENCY_QUANTILES = (0.5, 0.9, 0.99, 1.0)
SOURCE_TIMEOUT = 5.0

# No "_created" series next to every counter/histogram: noise for this service's dashboards.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

GRAPHQL_OPERATIONS = Counter(
    f"{PREFIX}_graphql_operations",
    "GraphQL operations finished by this process, by operation type and outcome.",
    ["operation_type", "outcome"],
    registry=REGISTRY,
)
GRAPHQL_DURATION = Histogram(
    f"{PREFIX}_graphql_operation_duration_seconds",
    "Wall time of GraphQL queries and mutations in this process.",
    ["operation_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
GRAPHQL_SUBSCRIPTIONS = Gauge(
    f"{PREFIX}_graphql_subscriptions_active",
    "GraphQL subscriptions open in this process.",
    registry=REGISTRY,
)
# Every label combination is present from the start, so rate() sees the first increment.
for _t in ("query", "mutation", "subscription"):
    for _o in ("ok", "error"):
        GRAPHQL_OPERATIONS.labels(_t, _o)
    if _t != "subscription":
        GRAPHQL_DURATION.labels(_t)


# --- scrape-time collection ---------------------------------------------------------------

# The families gathered (asynchronously) for the scrape running in this task.
_current: ContextVar[list[Metric] | None] = ContextVar("recruitmail_metrics_scrape", default=None)


class _ScrapeCollector(Collector):
    """Hands the registry what ``render_latest`` gathered for the current scrape."""

    def collect(self) -> Iterable[Metric]:
        return list(_current.get() or [])

    def describe(self) -> Iterable[Metric]:
        return []  # names vary with the data; never collect at registration


REGISTRY.register(_ScrapeCollector())


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ascending sequence (q in [0, 1])."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _database_families() -> list[Metric]:
    from tortoise.functions import Count, Min

    from core.models import InboundEmail, Message, MessageEvent

    by_status = {s.value: 0 for s in MessageStatus}
    rows: list[dict[str, Any]] = await (
        Message.annotate(n=Count("id")).group_by("status").values("status", "n")
    )
    for row in rows:
        by_status[str(getattr(row["status"], "value", row["status"]))] = int(row["n"])
    messages = GaugeMetricFamily(f"{PREFIX}_messages", "Messages by status.", labels=["status"])
    for status, n in sorted(by_status.items()):
        messages.add_metric([status], n)

    by_outcome = {o.value: 0 for o in InboundOutcome}
    rows = await InboundEmail.annotate(n=Count("id")).group_by("outcome").values("outcome", "n")
    for row in rows:
        by_outcome[str(row["outcome"])] = int(row["n"])
    inbound = GaugeMetricFamily(f"{PREFIX}_inbound_emails",
                                "Inbound emails accepted by the gateway, by outcome.",
                                labels=["outcome"])
    for outcome, n in sorted(by_outcome.items()):
        inbound.add_metric([outcome], n)

    now = datetime.now(UTC)
    oldest_rows = await (Message.filter(status=MessageStatus.QUEUED)
                         .annotate(oldest=Min("created_at")).values("oldest"))
    oldest = oldest_rows[0]["oldest"] if oldest_rows else None
    age = max(0.0, (now - _as_utc(oldest)).total_seconds()) if oldest else 0.0
    oldest_family = GaugeMetricFamily(f"{PREFIX}_oldest_queued_message_age_seconds",
                                      "Age of the oldest QUEUED message (0 when none).",
                                      value=age)

    events = await (
        MessageEvent.filter(status=MessageStatus.SENT, at__gte=now - LATENCY_WINDOW)
        .order_by("-id").limit(LATENCY_SAMPLE)
        .values("at", "message__created_at", "message__scheduled_at")
    )
    latencies: list[float] = []
    for ev in events:
        due = _as_utc(ev["message__created_at"])
        if ev["message__scheduled_at"] is not None:
            due = max(due, _as_utc(ev["message__scheduled_at"]))
        latencies.append(max(0.0, (_as_utc(ev["at"]) - due).total_seconds()))
    latencies.sort()
    latency = GaugeMetricFamily(
        f"{PREFIX}_send_latency_recent_seconds",
        f"Send latency (SENT event time minus max(created_at, scheduled_at)) over the last "
        f"{LATENCY_SAMPLE} messages sent in the past {int(LATENCY_WINDOW.total_seconds())} s.",
        labels=["quantile"],
    )
    for q in LATENCY_QUANTILES if latencies else ():
        latency.add_metric([str(q)], quantile(latencies, q))
    samples = GaugeMetricFamily(f"{PREFIX}_send_latency_recent_samples",
                                "Messages in the send latency window.", value=len(latencies))
    return [messages, inbound, oldest_family, latency, samples]


async def _redis_families() -> list[Metric]:
    from core.redis import get_redis, queue_name

    redis = get_redis()
    name = queue_name()
    now_ms = int(time.time() * 1000)
    total = await redis.zcard(name)
    ready = await redis.zcount(name, "-inf", now_ms)
    return [
        GaugeMetricFamily(f"{PREFIX}_queue_jobs",
                          "Jobs in the arq queue (ZCARD), deferred retries included.",
                          value=int(total)),
        GaugeMetricFamily(f"{PREFIX}_queue_jobs_ready",
                          "Jobs in the arq queue whose time has come.", value=int(ready)),
    ]


async def collect_async() -> list[Metric]:
    """Everything read from the database and Redis for one scrape (never raises)."""
    up = GaugeMetricFamily(f"{PREFIX}_metrics_source_up",
                           "1 when the source answered this scrape, else 0.", labels=["source"])
    families: list[Metric] = [up]
    sources = (("database", _database_families), ("redis", _redis_families))
    results = await asyncio.gather(
        *(asyncio.wait_for(fn(), SOURCE_TIMEOUT) for _, fn in sources), return_exceptions=True
    )
    for (source, _), result in zip(sources, results, strict=True):
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            log.warning("metrics source %s failed: %r", source, result)
            up.add_metric([source], 0)
        else:
            up.add_metric([source], 1)
            families.extend(result)
    return families


async def render_latest() -> bytes:
    """The exposition text (format 0.0.4) of REGISTRY, scrape-time sources included."""
    families = await collect_async()
    token = _current.set(families)
    try:
        return generate_latest(REGISTRY)
    finally:
        _current.reset(token)


def parse_exposition(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in an exposition text (for tests and tools)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, dict(sample.labels), float(sample.value)
