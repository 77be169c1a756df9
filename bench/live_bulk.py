"""Bulk sends and live dashboards together (not a test): prints figures, asserts nothing.

A fresh service (real `recruitmail api` and `recruitmail worker`, PostgreSQL, Redis, a
counting sink) sends a --n mail `sendBulkEmail`, once without subscribers and once with
--subscribers graphql-transport-ws clients (one client process) subscribed to the
company's `messageStatusChanged` (bench/live.py's selection); for each: the bulk's rate
(mutation to last SENT), the api's CPU seconds, and how many changes each subscriber got.

Usage: .venv/bin/python bench/live_bulk.py [--n 10000] [--subscribers 50] [--repeat 1] [--nice 0]
       [--idle] [--drain]

--idle runs the client process under SCHED_IDLE: it gets only CPU time nothing else wants,
standing in for browsers on other machines (a niced process still takes a share of these
2 cores); the figures are then the server's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import Service, send_bulk, start_sink, wait_for_api  # noqa: E402

LIVE = ROOT / "bench" / "live.py"
DRAIN = ROOT / "bench" / "drain_clients.py"


def _lower(nice: int, idle: bool) -> None:
    """The client process's priority (in the child, before exec)."""
    if nice:
        os.nice(nice)
    if idle:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


async def one_run(tmp: Path, n: int, subscribers: int, tag: str,
                  nice: int = 0, idle: bool = False, drain: bool = False) -> dict[str, Any]:
    sink = start_sink(tmp)
    svc = Service(tmp, sink.port, 8)
    clients: subprocess.Popen[bytes] | None = None
    try:
        token = await svc.setup()
        app_ids = await svc.seed(n)
        api = svc.start("api")
        svc.start("worker")
        stop, ready, out = tmp / f"stop-{tag}", tmp / f"ready-{tag}", tmp / f"out-{tag}"
        if subscribers:
            url = f"ws://127.0.0.1:{svc.api_port}/graphql"
            # Wait for the api before the clients connect.
            await wait_for_api(svc)
            command = ([str(DRAIN), url, token, str(subscribers)] if drain
                       else [str(LIVE), "--client", url, token, str(subscribers), "0"])
            clients = subprocess.Popen([sys.executable, *command, str(ready), str(out), str(stop)],
                                       preexec_fn=lambda: _lower(nice, idle))
            while not ready.exists():
                if clients.poll() is not None:
                    raise SystemExit("the client process failed")
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
        proc = psutil.Process(api.pid)
        cpu0 = sum(proc.cpu_times()[:2])
        cproc = psutil.Process(clients.pid) if clients is not None else None
        ccpu0 = sum(cproc.cpu_times()[:2]) if cproc is not None else 0.0
        wall_start, _ = await send_bulk(svc, token, app_ids)
        last = await svc.wait_bulk_sent(n)
        rate = n / (last - wall_start)
        await asyncio.sleep(3.0)  # the last changes on their way
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        ccpu = sum(cproc.cpu_times()[:2]) - ccpu0 if cproc is not None else 0.0
        got: list[int] = []
        if clients is not None:
            stop.write_text("stop")
            clients.wait(120)
            data = json.loads(out.read_text())
            got = (data["counts"] if drain
                   else [len({(m, s) for m, s, _ in ev}) for ev in data["received"]])
        return {"subscribers": subscribers, "rate": rate, "api_cpu_s": cpu, "clients_cpu_s": ccpu,
                "changes_min": min(got, default=0), "changes_max": max(got, default=0),
                "changes_total": 3 * n}
    finally:
        if clients is not None and clients.poll() is None:
            clients.kill()
        await svc.teardown()
        sink.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of the client process (clients stand in for browsers "
                             "on other machines; on a 2-core machine they compete with the "
                             "worker)")
    parser.add_argument("--drain", action="store_true",
                        help="clients that only split frames and count them "
                             "(bench/drain_clients.py): the server's own cost")
    parser.add_argument("--idle", action="store_true",
                        help="run the client process under SCHED_IDLE (only idle CPU)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="rm-bench-live-bulk-") as tmpdir:
        for r in range(args.repeat):
            for subs in (0, args.subscribers):
                res = await one_run(Path(tmpdir), args.n, subs, f"{r}-{subs}", args.nice,
                                    args.idle, args.drain)
                results.append(res)
                print(f"{subs:>4} subscribers: {res['rate']:7.1f} mails/s  api CPU "
                      f"{res['api_cpu_s']:6.1f} s  clients CPU {res['clients_cpu_s']:6.1f} s  "
                      f"changes per subscriber "
                      f"{res['changes_min']}-{res['changes_max']} of {res['changes_total']}",
                      flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    t = time.time()
    asyncio.run(main())
    print(f"({time.time() - t:.0f} s)")
