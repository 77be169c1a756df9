"""Live dashboards benchmark (not a test). Prints its figures; asserts nothing.

Real `recruitmail api` and `recruitmail worker` processes on PostgreSQL, Redis and a
counting SMTP sink in its own process. For 1, 200 and 1,000 graphql-transport-ws
subscribers of one company to `messageStatusChanged` (spread over client processes, so
the clients' own CPU does not stand in the server's way), `sendMessage` is called 5 times
a second for --seconds; each message goes QUEUED -> SENDING -> SENT (15 changes a second).
Figures per run:
  - latency from the change's `at` to its receipt by a client: p50 / p99 / max;
  - events lost: changes a subscriber did not receive (of sends x 3 each);
  - api CPU: the api process's CPU time over the run's wall time (100 % = one core);
  - with a stalled client (subscribes, never reads) among 200: the others' p99.
Then the statements of a `messages(first: 50)` page with candidate, attachments and events
(and of first: 10), counted at the driver (asyncpg query loggers) in this process.

Usage: .venv/bin/python bench/live.py [--counts 1,200,1000] [--seconds 20] [--rate 5]
Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/8).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import Service, start_sink, wait_for_api  # noqa: E402

PER_CLIENT_PROCESS = 250
SUBSCRIPTION = """subscription { messageStatusChanged {
  message { id status subject candidate { id fullName } } previousStatus status at } }"""
CANDIDATE = """mutation($input: CreateCandidateInput!) {
  createCandidate(input: $input) { candidate { id } errors { message } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id } errors { code message } } }"""
PAGE = """query($first: Int) { messages(first: $first) { totalCount edges { node {
  id status subject candidate { id fullName email } attachments { id filename }
  events { status at detail } } } } }"""


# --- client processes --------------------------------------------------------------------

async def client_main(url: str, token: str, count: int, stalled: int, ready: Path,
                      out: Path, stop: Path) -> None:
    """`count` subscribers (the first `stalled` never read); record (message, status,
    latency in ms) of every event received, until the stop file appears."""
    from websockets.asyncio.client import connect

    received: list[list[tuple[str, str, float]]] = [[] for _ in range(count)]
    closes: list[int | None] = [None] * count

    async def one(i: int) -> None:
        async with connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                           max_size=None, open_timeout=60) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {token}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": SUBSCRIPTION}}))
            opened.append(i)
            if i < stalled:
                await asyncio.Event().wait()  # never reads
            mine = received[i]
            try:
                async for raw in ws:
                    now = time.time()
                    msg = json.loads(raw)
                    if msg.get("type") != "next":
                        continue
                    change = msg["payload"]["data"]["messageStatusChanged"]
                    at = datetime.fromisoformat(change["at"]).timestamp()
                    mine.append((change["message"]["id"], change["status"], (now - at) * 1000))
            except Exception as exc:  # closed by the server
                closes[i] = getattr(getattr(exc, "rcvd", None), "code", -1)

    opened: list[int] = []
    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    while len(opened) < count:
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()  # type: ignore[misc]
        await asyncio.sleep(0.05)
    ready.write_text("ok")
    while not stop.exists():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.write_text(json.dumps({"received": received[stalled:], "closes": closes}))


# --- the run -----------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


async def run_one(svc: Service, token: str, api_pid: int, candidates: list[str],
                  subscribers: int, stalled: int, seconds: float, rate: float,
                  tmp: Path) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{svc.api_port}/graphql"
    stop = tmp / f"stop-{subscribers}-{stalled}"
    procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    total = subscribers + stalled
    n_procs = max(1, math.ceil(total / PER_CLIENT_PROCESS))
    for k in range(n_procs):
        count = total // n_procs + (1 if k < total % n_procs else 0)
        st = stalled if k == 0 else 0
        ready, out = tmp / f"ready-{total}-{k}", tmp / f"out-{total}-{k}"
        proc = subprocess.Popen([sys.executable, __file__, "--client", url, token, str(count),
                                 str(st), str(ready), str(out), str(stop)])
        procs.append((proc, ready, out))
    for proc, ready, _ in procs:
        while not ready.exists():
            if proc.poll() is not None:
                raise SystemExit("a client process failed")
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # every subscription registered with the api

    api = psutil.Process(api_pid)
    cpu0 = sum(api.cpu_times()[:2])
    clients = [psutil.Process(p.pid) for p, _, _ in procs]
    ccpu0 = sum(sum(c.cpu_times()[:2]) for c in clients)
    sent: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.api_port}",
                                 headers=headers, timeout=30) as http:
        t0 = time.monotonic()
        n = int(seconds * rate)
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            r = await http.post("/graphql", json={"query": SEND, "variables": {"input": {
                "candidateId": candidates[i % len(candidates)], "subject": f"Hello {i}",
                "body": "Live benchmark"}}})
            payload = r.json()["data"]["sendMessage"]
            if payload["errors"]:
                raise SystemExit(f"sendMessage: {payload['errors']}")
            sent.append(payload["message"]["id"])
        wall = time.monotonic() - t0
        # Let the last messages be sent and their changes arrive.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count, _ = await svc.sent_count()
            if count >= len(sent) + getattr(svc, "already_sent", 0):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(5.0)  # the last changes on their way to every subscriber
        wall_cpu = time.monotonic() - t0
    cpu = sum(api.cpu_times()[:2]) - cpu0
    clients_cpu = sum(sum(c.cpu_times()[:2]) for c in clients) - ccpu0
    svc.already_sent = getattr(svc, "already_sent", 0) + len(sent)  # type: ignore[attr-defined]
    stop.write_text("stop")
    latencies: list[float] = []
    by_status: dict[str, list[float]] = {}
    lost = 0
    closed = 0
    wanted = {(m, s) for m in sent for s in ("QUEUED", "SENDING", "SENT")}
    for proc, _, out in procs:
        proc.wait(60)
        data = json.loads(out.read_text())
        closed += sum(1 for c in data["closes"] if c is not None)
        for events in data["received"]:
            got = {(m, s) for m, s, _ in events}
            lost += len(wanted - got)
            for m, s, lat in events:
                if (m, s) in wanted:
                    latencies.append(lat)
                    by_status.setdefault(s, []).append(lat)
    return {"subscribers": subscribers, "stalled": stalled, "sends": len(sent),
            "events_each": len(wanted), "p50_ms": pct(latencies, 50),
            "p99_ms": pct(latencies, 99), "max_ms": max(latencies, default=float("nan")),
            "lost": lost, "closed": closed, "api_cpu_pct": 100 * cpu / wall_cpu,
            "send_wall_s": wall, "clients_cpu_pct": 100 * clients_cpu / wall_cpu,
            "p50_ms_by_status": {s: pct(v, 50) for s, v in by_status.items()}}


async def page_statements(svc: Service) -> dict[int, int]:
    """Statements of a messages page through the ASGI app in this process, counted at the
    driver; every message has a candidate, 3 events and 2 attachments."""
    os.environ.update({k: v for k, v in svc.env.items() if k.startswith("RECRUITMAIL_")})
    from core.settings import reset_settings

    reset_settings()
    from api.app import create_app
    from core.db import close_db, init_db
    from core.models import Document, Message
    from tests.support.statements import count_statements

    ctx = await init_db()
    try:
        msgs = await Message.all().order_by("-created_at").limit(50)
        for i, m in enumerate(msgs):
            docs = [await Document.create(company_id=m.company_id, candidate_id=m.candidate_id,
                                          filename=f"cv-{i}-{n}.pdf",
                                          content_type="application/pdf", size=1,
                                          sha256="0" * 64, blob_key=f"bench-{i}-{n}")
                    for n in range(2)]
            await m.attachments.add(*docs)
        token = svc.token  # type: ignore[attr-defined]
        out: dict[int, int] = {}
        transport = httpx.ASGITransport(app=create_app(manage_db=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for first in (50, 10):
                async with count_statements() as seen:
                    r = await client.post("/graphql", json={"query": PAGE,
                                                            "variables": {"first": first}},
                                          headers={"Authorization": f"Bearer {token}"})
                body = r.json()
                assert not body.get("errors"), body
                page = body["data"]["messages"]
                assert len(page["edges"]) == min(first, page["totalCount"])
                out[first] = len(seen)
        return out
    finally:
        await close_db(ctx)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="1,200,1000")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--stalled-with", type=int, default=200,
                        help="also run this many subscribers plus one that never reads (0: no)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c]
    with tempfile.TemporaryDirectory(prefix="rm-bench-live-") as tmpdir:
        tmp = Path(tmpdir)
        sink = start_sink(tmp)
        svc = Service(tmp, sink.port, 8)
        try:
            token = await svc.setup()
            svc.token = token  # type: ignore[attr-defined]
            api = svc.start("api")
            svc.start("worker")
            base = f"http://127.0.0.1:{svc.api_port}"
            headers = {"Authorization": f"Bearer {token}"}
            await wait_for_api(svc)
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
                candidates = []
                for i in range(20):
                    r = await http.post("/graphql", json={"query": CANDIDATE, "variables": {
                        "input": {"firstName": f"Cand{i}", "lastName": "Bench",
                                  "email": f"cand{i}@example.org"}}})
                    candidates.append(r.json()["data"]["createCandidate"]["candidate"]["id"])
            runs = [(n, 0) for n in counts]
            if args.stalled_with:
                runs.insert(min(2, len(runs)), (args.stalled_with, 1))
            results = []
            for n, stalled in runs:
                res = await run_one(svc, token, api.pid, candidates, n, stalled, args.seconds,
                                    args.rate, tmp)
                results.append(res)
                label = f"{n} subscribers" + (" + 1 that never reads" if stalled else "")
                print(f"{label:>34}: p50 {res['p50_ms']:7.1f} ms  p99 {res['p99_ms']:7.1f} ms"
                      f"  max {res['max_ms']:7.1f} ms  lost {res['lost']} of "
                      f"{res['events_each'] * n}  api CPU {res['api_cpu_pct']:5.1f} %"
                      + (f"  (stalled closed: {res['closed']})" if stalled else ""),
                      flush=True)
                print(f"{'':>34}  p50 by status {res['p50_ms_by_status']}, client processes' "
                      f"CPU {res['clients_cpu_pct']:.0f} %", flush=True)
            statements = await page_statements(svc)
            print(f"{'messages page statements':>34}: first: 50 -> {statements[50]}, "
                  f"first: 10 -> {statements[10]}")
            print(json.dumps({"runs": results, "page_statements": statements}))
        finally:
            await svc.teardown()
            sink.stop()
            _ = signal  # processes are stopped by Service.teardown


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, token, count, stalled, ready, out, stop = sys.argv[2:9]
        asyncio.run(client_main(url, token, int(count), int(stalled), Path(ready), Path(out),
                                Path(stop)))
    else:
        asyncio.run(main())
