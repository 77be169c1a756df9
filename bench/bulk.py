"""Bulk sending benchmark (not a test). Prints its figures; asserts nothing.

Measures, in one run on PostgreSQL:
  (a) raw aiosmtplib rate: N ~2 KB mails over C reused connections to a counting sink
      that runs in its own process;
  (b) the service's rate from the sendBulkEmail mutation to the last SENT, for N
      personalised messages (real `recruitmail api` and `recruitmail worker` processes,
      the same kind of sink as the relay);
  (c) the ratio (b)/(a);
  (d) how long the mutation took;
  (e) the worker's peak RSS for N and for 5·N recipients;
  (f) a crash figure: a 2,000-mail bulk, two workers, five `kill -9` during the send
      (each restarted): duplicates per kill and seconds from the last restart to the
      last SENT.

Usage: .venv/bin/python bench/bulk.py [--n 10000] [--big 50000] [--connections 8] [--repeat 3]
Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/8).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import psutil

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


def two_kb_mail(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Bench <recruiting@bench.example>"
    msg["To"] = f"c{i}@example.org"
    msg["Subject"] = f"Hello candidate {i}"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
    msg.set_content(("Dear candidate, thank you for applying. " * 48)[:1900])
    return msg


def personalised_mail(i: int) -> EmailMessage:
    """What a minimal sender builds per recipient: text + HTML, the usual headers."""
    msg = EmailMessage()
    msg["From"] = "Ada Admin <recruiting@bench.example>"
    msg["To"] = f"c{i}@example.org"
    msg["Reply-To"] = f"Ada Admin <r-{i:032x}@in.bench.example>"
    msg["Subject"] = f"About Backend Engineer, First{i}"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
    text = f"Dear First{i} Last{i},\n\n" + "thank you for your interest in Backend Engineer. " * 9
    msg.set_content(text)
    msg.add_alternative(f"<p>{text}</p>", subtype="html")
    return msg


async def raw_rate(n: int, connections: int, port: int, *, build_in_loop: bool = False,
                   prebuilt: list[EmailMessage] | None = None) -> float:
    """(a): the same number of ~2 KB mails over the same number of reused connections.
    With build_in_loop, each mail is built (text + HTML, personalised) inside the timed loop,
    as a minimal sender without any service around it would."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i if build_in_loop else (prebuilt[i] if prebuilt else two_kb_mail(i)))

    async def one_connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench.example")
        await client.connect()
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            m = personalised_mail(item) if build_in_loop else item
            await client.send_message(m, sender="b@bench.example", recipients=[m["To"]])
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return n / (time.perf_counter() - start)


async def raw_run(tmp: Path, n: int, connections: int, **kw: Any) -> float:
    sink = start_sink(tmp)
    try:
        return await raw_rate(n, connections, sink.port, **kw)
    finally:
        sink.stop()


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


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

    async def sent_count(self, since: float) -> tuple[int, float | None]:
        conn = await asyncpg.connect(self.env["RECRUITMAIL_DATABASE_URL"])
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, extract(epoch FROM max(sent_at)) AS last "
                "FROM message WHERE status = 'SENT'")
            return int(row["n"]), (float(row["last"]) if row["last"] is not None else None)
        finally:
            await conn.close()

    async def teardown(self) -> None:
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


async def crash_run(tmp: Path, n: int, connections: int, kills: int = 5) -> dict[str, float]:
    """(f): n mails, two worker processes with `connections` each and the default lease and
    sweep; `kill -9` of one of them `kills` times during the send (as the sink's count
    passes evenly spaced marks), restarted each time. Duplicates come from the sink's
    count of mails against its count of distinct Message-IDs."""
    sink = start_sink(tmp)
    svc = Service(tmp, sink.port, connections)
    try:
        token = await svc.setup()
        app_ids = await svc.seed(n)
        svc.start("api")
        workers = [svc.start("worker"), svc.start("worker")]
        await send_bulk(svc, token, app_ids)
        restarted = time.time()
        killed_at: list[int] = []
        for k in range(kills):
            mark = n * (k + 1) // (kills + 2)
            while sink.count() < mark:
                await asyncio.sleep(0.02)
            victim = workers[k % 2]
            victim.kill()
            victim.wait()
            killed_at.append(sink.count())
            workers[k % 2] = svc.start("worker")
            restarted = time.time()
        while True:
            count, last = await svc.sent_count(0)
            if count >= n:
                break
            await asyncio.sleep(0.1)
        assert last is not None
        await asyncio.sleep(1)
    finally:
        await svc.teardown()
        received = sink.stop()
    distinct = int(sink.count_file.with_suffix(".ids").read_text())
    return {"duplicates": float(received - distinct), "lost": float(n - distinct),
            "recovery_s": last - restarted, "kills": float(kills)}


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


async def service_run(tmp: Path, n: int, connections: int, workers: int = 1) -> dict[str, float]:
    sink = start_sink(tmp)
    svc = Service(tmp, sink.port, connections)
    try:
        token = await svc.setup()
        app_ids = await svc.seed(n)
        svc.start("api")
        worker_procs = [svc.start("worker") for _ in range(workers)]
        wall_start, mutation_s = await send_bulk(svc, token, app_ids)
        peak = 0
        procs = [psutil.Process(w.pid) for w in worker_procs]
        last = None
        while True:
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, proc.memory_info().rss)
            count, last = await svc.sent_count(wall_start)
            if count >= n:
                break
            await asyncio.sleep(0.1)
        assert last is not None
        return {"mutation_s": mutation_s, "rate": n / (last - wall_start),
                "peak_rss_mb": peak / 1e6, "sink": float(sink.count())}
    finally:
        await svc.teardown()
        sink.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=50_000)
    ap.add_argument("--connections", type=int, default=8,
                    help="SMTP connections in all (split between worker processes)")
    ap.add_argument("--crash-n", type=int, default=2000,
                    help="recipients of the crash run (f); 0 skips it")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of (a), (b) and (b2); medians are printed (this machine is noisy)")
    args = ap.parse_args()
    tmp = Path(os.environ.get("BENCH_TMP", ROOT / "var" / "bench"))
    tmp.mkdir(parents=True, exist_ok=True)

    prebuilt = [two_kb_mail(i) for i in range(args.n)]
    raws = [await raw_run(tmp, args.n, args.connections, prebuilt=prebuilt)
            for _ in range(args.repeat)]
    del prebuilt
    raw_built = await raw_run(tmp, args.n, args.connections, build_in_loop=True)
    ones = [await service_run(tmp, args.n, args.connections, 1) for _ in range(args.repeat)]
    twos = [await service_run(tmp, args.n, args.connections // 2, 2)
            for _ in range(args.repeat)]
    big = await service_run(tmp, args.big, args.connections, 1) if args.big else None
    crash = await crash_run(tmp, args.crash_n, args.connections) if args.crash_n else None

    a, a_lo, a_hi = spread(raws)
    b1, b1_lo, b1_hi = spread([r["rate"] for r in ones])
    b2, b2_lo, b2_hi = spread([r["rate"] for r in twos])
    d, d_lo, d_hi = spread([r["mutation_s"] for r in ones + twos])
    rss = statistics.median(r["peak_rss_mb"] for r in ones)
    runs = f"median of {args.repeat} runs"
    print(f"recipients                         {args.n}")
    print(f"SMTP connections                   {args.connections} in all")
    print(f"(a) raw aiosmtplib rate            {a:8.0f} mails/s   ({runs}: {a_lo:.0f}–{a_hi:.0f};"
          " mails built beforehand)")
    print(f"(a') raw, building each mail       {raw_built:8.0f} mails/s   (text+HTML per recipient)")
    print(f"(b) service rate, mutation→SENT    {b1:8.0f} mails/s   ({runs}: {b1_lo:.0f}–{b1_hi:.0f};"
          " 1 worker process)")
    print(f"(b2) same with 2 worker processes  {b2:8.0f} mails/s   ({runs}: {b2_lo:.0f}–{b2_hi:.0f};"
          f" {args.connections // 2} connections each)")
    print(f"(c) ratio (b)/(a)                  {b1 / a:8.2f}   (2 workers: {b2 / a:.2f};"
          f" worst (b) over best (a): {b1_lo / a_hi:.2f})")
    print(f"(c') ratio (b)/(a')                {b1 / raw_built:8.2f}")
    print(f"(d) sendBulkEmail mutation         {d:8.2f} s   (median of {len(ones + twos)}:"
          f" {d_lo:.2f}–{d_hi:.2f})")
    print(f"(e) worker peak RSS, {args.n:>6}       {rss:8.1f} MB  (1 worker)")
    if crash:
        print(f"(f) kill -9 x{crash['kills']:.0f} in a {args.crash_n}-mail bulk, 2 workers"
              f"   {crash['duplicates'] / crash['kills']:.1f} duplicates per kill"
              f" ({crash['duplicates']:.0f} in all, {crash['lost']:.0f} lost);"
              f" last SENT {crash['recovery_s']:.1f} s after the last restart")
    if big:
        print(f"(e) worker peak RSS, {args.big:>6}       {big['peak_rss_mb']:8.1f} MB"
              f"   ({big['peak_rss_mb'] / rss:.2f}x; rate {big['rate']:.0f}/s,"
              f" mutation {big['mutation_s']:.2f} s)")


if __name__ == "__main__":
    asyncio.run(main())
