"""Bulk sending benchmark (not a test). Prints its figures; asserts nothing.

Measures, in one run on PostgreSQL:
  (a) raw aiosmtplib rate: N ~2 KB mails over C reused connections to a counting sink
      that runs in its own process;
  (b) the service's rate from the sendBulkEmail mutation to the last SENT, for N
      personalised messages (real `recruitmail api` and `recruitmail worker` processes,
      the same kind of sink as the relay);
  (c) the ratio (b)/(a): (a), (b) and (b2) take turns, each run's (b) over the (a) just
      before it, the median of those;
  (d) how long the mutation took;
  (e) the worker's peak RSS for N and for 5·N recipients;
  (f) a crash figure: a 2,000-mail bulk, two workers, five `kill -9` during the send
      (each restarted): duplicates per kill and seconds from the last restart to the
      last SENT.

Usage: .venv/bin/python bench/bulk.py [--n 10000] [--big 50000] [--connections 8] [--repeat 5]
Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/8).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import psutil
from harness import ROOT, Service, send_bulk, start_sink


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
        last = await svc.wait_bulk_sent(n)
        await asyncio.sleep(1)
    finally:
        await svc.teardown()
        received = sink.stop()
    distinct = int(sink.count_file.with_suffix(".ids").read_text())
    return {"duplicates": float(received - distinct), "lost": float(n - distinct),
            "recovery_s": last - restarted, "kills": float(kills)}


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
        watching = True

        async def watch_rss() -> None:
            nonlocal peak
            while watching:
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        peak = max(peak, proc.memory_info().rss)
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch_rss())
        try:
            last = await svc.wait_bulk_sent(n)
        finally:
            watching = False
            await watcher
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
    ap.add_argument("--repeat", type=int, default=5,
                    help="runs of (a), (b) and (b2); medians are printed (this machine is noisy)")
    args = ap.parse_args()
    tmp = Path(os.environ.get("BENCH_TMP", ROOT / "var" / "bench"))
    tmp.mkdir(parents=True, exist_ok=True)

    prebuilt = [two_kb_mail(i) for i in range(args.n)]
    # (a), (b) and (b2) take turns, so that each ratio compares runs a minute apart: this
    # machine's own speed drifts by up to 2x within minutes, and three (a) runs followed by
    # three (b) runs measured the drift as much as the service.
    raws: list[float] = []
    ones: list[dict[str, float]] = []
    twos: list[dict[str, float]] = []
    for _ in range(args.repeat):
        raws.append(await raw_run(tmp, args.n, args.connections, prebuilt=prebuilt))
        ones.append(await service_run(tmp, args.n, args.connections, 1))
        twos.append(await service_run(tmp, args.n, args.connections // 2, 2))
    del prebuilt
    raw_built = await raw_run(tmp, args.n, args.connections, build_in_loop=True)
    big = await service_run(tmp, args.big, args.connections, 1) if args.big else None
    crash = await crash_run(tmp, args.crash_n, args.connections) if args.crash_n else None

    a, a_lo, a_hi = spread(raws)
    b1, b1_lo, b1_hi = spread([r["rate"] for r in ones])
    b2, b2_lo, b2_hi = spread([r["rate"] for r in twos])
    d, d_lo, d_hi = spread([r["mutation_s"] for r in ones + twos])
    rss = statistics.median(r["peak_rss_mb"] for r in ones)
    c1, c1_lo, c1_hi = spread([r["rate"] / x for r, x in zip(ones, raws, strict=True)])
    c2 = statistics.median(r["rate"] / x for r, x in zip(twos, raws, strict=True))
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
    print(f"(c) ratio (b)/(a)                  {c1:8.2f}   (median of the {args.repeat} runs'"
          f" ratios, each (b) over the (a) just before it: {c1_lo:.2f}–{c1_hi:.2f};"
          f" 2 workers: {c2:.2f}; medians' ratio {b1 / a:.2f})")
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
