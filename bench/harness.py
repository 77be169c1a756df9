"""Bench harness: a fresh service (its own PostgreSQL database, real `recruitmail api` and
`recruitmail worker` processes and their environment), a counting SMTP sink in its own
process (bench/sink.py), and the sendBulkEmail call, shared by bench/bulk.py,
bench/live.py and bench/live_bulk.py.

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/8).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    proc: subprocess.Popen[bytes]
    port: int
    count_file: Path

    def count(self) -> int:
        try:
            return int(self.count_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        return self.count()


def start_sink(tmp: Path) -> Sink:
    port = free_port()
    count_file = tmp / f"sink-{port}.count"
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sink.py"), str(port),
                             str(count_file)])
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            break
        time.sleep(0.05)
    return Sink(proc, port, count_file)


class Service:
    """A fresh database, the api and worker processes, and their environment."""

    def __init__(self, tmp: Path, sink_port: int, connections: int) -> None:
        self.db = f"rm_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "RECRUITMAIL_DATABASE_URL": f"{PG}/{self.db}",
            "RECRUITMAIL_REDIS_URL": REDIS,
            "RECRUITMAIL_REDIS_PREFIX": f"rmbench:{uuid.uuid4().hex[:8]}",
            "RECRUITMAIL_SMTP_URL": f"smtp://127.0.0.1:{sink_port}",
            "RECRUITMAIL_SECRET_KEY": "bench-secret",
            "RECRUITMAIL_VAR_DIR": str(tmp / "var"),
            "RECRUITMAIL_BLOB_DIR": str(tmp / "blobs"),
            "RECRUITMAIL_API_PORT": str(self.api_port),
            "RECRUITMAIL_SMTP_CONNECTIONS_PER_SERVER": str(connections),
            "RECRUITMAIL_LOG_LEVEL": "WARNING",
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self._poll: asyncpg.Connection | None = None

    async def admin(self, sql: str) -> None:
        conn = await asyncpg.connect(f"{PG}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(self, *args: str) -> str:
        return subprocess.run([str(BIN / "recruitmail"), *args], env=self.env, check=True,
                              capture_output=True, text=True).stdout

    async def setup(self) -> str:
        await self.admin(f'CREATE DATABASE "{self.db}"')
        self.run("migrate")
        return str(json.loads(self.run("admin", "create-company", "Bench Co", "--admin-name",
                                       "Ada Admin", "--admin-email", "ada@bench.example"))["token"])

    def start(self, what: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([str(BIN / "recruitmail"), what], env=self.env)
        self.procs.append(proc)
        return proc

    async def seed(self, n: int) -> list[str]:
        """n candidates with applications, inserted directly (setup, not measured)."""
        conn = await asyncpg.connect(self.env["RECRUITMAIL_DATABASE_URL"])
        try:
            company_id = await conn.fetchval("SELECT id FROM company LIMIT 1")
            pos = uuid.uuid4()
            await conn.execute("INSERT INTO position (id, company_id, title, created_at) "
                               "VALUES ($1, $2, 'Backend Engineer', now())", pos, company_id)
            cands = [(uuid.uuid4(), company_id, f"First{i}", f"Last{i}", f"c{i}@example.org")
                     for i in range(n)]
            now = datetime.now(UTC)
            await conn.copy_records_to_table(
                "candidate", records=[(*c, "en", "UTC", now) for c in cands],
                columns=["id", "company_id", "first_name", "last_name", "email", "language",
                         "timezone", "created_at"])
            apps = [(uuid.uuid4(), company_id, c[0], pos, "ACTIVE", now) for c in cands]
            await conn.copy_records_to_table(
                "application", records=apps,
                columns=["id", "company_id", "candidate_id", "position_id", "status",
                         "created_at"])
            return [str(a[0]) for a in apps]
        finally:
            await conn.close()

    async def _poller(self) -> asyncpg.Connection:
        # One connection for all the polls of a run: a new one each time cost PostgreSQL a
        # backend's start (~6 ms of CPU here, ten times a second, taken from the service).
        if self._poll is None or self._poll.is_closed():
            self._poll = await asyncpg.connect(self.env["RECRUITMAIL_DATABASE_URL"])
        return self._poll

    async def sent_count(self) -> tuple[int, float | None]:
        """How many messages are SENT, and the last one's sent_at (epoch seconds)."""
        row = await (await self._poller()).fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM max(sent_at)) AS last "
            "FROM message WHERE status = 'SENT'")
        return int(row["n"]), (float(row["last"]) if row["last"] is not None else None)

    async def wait_bulk_sent(self, n: int, every: float = 0.1) -> float:
        """Until `n` mails of bulk operations are SENT; returns the last one's sent_at
        (epoch seconds). Polls the operations' counters (one row each, kept exact by the
        worker's SENT statement) rather than counting messages, whose scan grew with the bulk
        and ran ten times a second beside the service being measured."""
        conn = await self._poller()
        while await conn.fetchval("SELECT coalesce(sum(sent), 0) FROM bulk_operation") < n:
            await asyncio.sleep(every)
        count, last = await self.sent_count()
        assert count >= n and last is not None, (count, last)
        return last

    async def teardown(self) -> None:
        if self._poll is not None:
            await self._poll.close()
            self._poll = None
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(30)
            if p.poll() is None:
                p.kill()
        await self.admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


def gid(type_name: str, pk: str) -> str:
    import base64

    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


MUTATION = """
mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) { bulkOperation { id total } errors { code message field } }
}"""


async def wait_for_api(svc: Service, tries: int = 300) -> None:
    """Until the api answers /healthz (or `tries` tenths of a second have passed)."""
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(tries):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{svc.api_port}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def send_bulk(svc: Service, token: str, app_ids: list[str]) -> tuple[float, float]:
    """Wait for the api, send the sendBulkEmail mutation; returns its wall-clock start and
    how long it took."""
    await wait_for_api(svc)
    # About 2 KB on the wire with its HTML alternative and headers, like (a)'s mails.
    body = ("Dear {{ candidate.first_name }} {{ candidate.last_name }},\n\n"
            + "thank you for your interest in {{ position.title }} at {{ company.name }}. " * 6)
    variables = {"input": {"applicationIds": [gid("Application", a) for a in app_ids],
                           "subject": "About {{ position.title }}, {{ candidate.first_name }}",
                           "body": body}}
    async with httpx.AsyncClient(timeout=120) as client:
        wall_start = time.time()
        t0 = time.perf_counter()
        resp = await client.post(f"http://127.0.0.1:{svc.api_port}/graphql",
                                 json={"query": MUTATION, "variables": variables},
                                 headers={"Authorization": f"Bearer {token}"})
        mutation_s = time.perf_counter() - t0
    payload = resp.json()["data"]["sendBulkEmail"]
    if payload["errors"]:
        raise SystemExit(f"mutation errors: {payload['errors'][:3]}")
    return wall_start, mutation_s
