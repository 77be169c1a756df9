"""arq WorkerSettings for `recruitmail worker`."""

from __future__ import annotations

import logging
from signal import Signals
from typing import Any

from arq import cron
from arq.worker import Worker, func

from core.db import close_db, init_db
from core.redis import close_redis, queue_name, redis_settings
from core.settings import get_settings
from worker.jobs import send_batch, send_message, sweep
from worker.lanes import Outbox
from worker.sending import Sender
from worker.transport import Transport

log = logging.getLogger(__name__)


async def startup(ctx: dict[str, Any]) -> None:
    if not ctx.get("external_db"):
        # The worker's writes (claims, SENT, failures) do not wait for the WAL flush at
        # commit: they are visible to every other session at once, and survive a worker
        # crash; only a crash of PostgreSQL itself may lose the last few hundred ms of
        # them, and those messages are then sent again (same Message-ID), never lost.
        ctx["tortoise"] = await init_db(server_settings={"synchronous_commit": "off"}, hot=True,
                                        lean_pool=True)
    ctx["transport"] = Transport()
    sender = ctx.get("sender")
    if sender is None:
        sender = ctx["sender"] = Sender()
    sender.start()
    ctx["outbox"] = Outbox(sender, ctx["transport"])
    if sender.stopping.is_set():
        ctx["outbox"].stop()


async def shutdown(ctx: dict[str, Any]) -> None:
    outbox: Outbox | None = ctx.get("outbox")
    if outbox is not None:
        await outbox.close()
    sender: Sender | None = ctx.get("sender")
    if sender is not None:
        await sender.close()
    transport: Transport | None = ctx.get("transport")
    if transport is not None:
        await transport.close()
    if not ctx.get("external_db"):
        # Embedded (dev, tests): the caller's api shares this loop's Redis clients.
        await close_redis()
    if ctx.get("tortoise") is not None:
        await close_db(ctx["tortoise"])


def sweep_seconds() -> set[int]:
    step = max(1, min(60, get_settings().sweep_interval_seconds))
    return set(range(0, 60, step))


def worker_kwargs(*, with_cron: bool = True) -> dict[str, Any]:
    s = get_settings()
    functions = [
        # Our attempts live in the database; arq's own retry count must not stop us.
        func(send_message, name="send_message", max_tries=1000, timeout=s.smtp_timeout_seconds * 4),
        func(send_batch, name="send_batch", max_tries=1000, timeout=600),
    ]
    return {
        "functions": functions,
        # arq makes the id "cron:<name>:<tick>": one sweep per tick across all workers of a
        # deployment, and deployments sharing a Redis don't swallow each other's ticks.
        "cron_jobs": [cron(sweep, name=f"{s.redis_prefix}:sweep", second=sweep_seconds(),
                           run_at_startup=True, timeout=120)] if with_cron else [],
        "redis_settings": redis_settings(),
        "queue_name": queue_name(),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "keep_result": 0,
        # Enough chunks in flight to keep every SMTP connection busy, few enough that
        # memory does not grow with the size of a bulk operation.
        "max_jobs": 16,
        "poll_delay": 0.1,
        # On SIGTERM, let a message being handed to SMTP finish instead of leaving it SENDING.
        "job_completion_wait": int(s.smtp_timeout_seconds) + 5,
    }


class SendingWorker(Worker):
    """arq's Worker, telling the sender as soon as a stop signal arrives: it then claims
    nothing more, finishes and records the mails on the wire, and puts the rest of its
    chunks back in the queue (so SIGTERM ends with nothing SENDING and no duplicate)."""

    def _stopping(self) -> None:
        outbox: Outbox | None = self.ctx.get("outbox")
        if outbox is not None:
            outbox.stop()
        sender: Sender | None = self.ctx.get("sender")
        if sender is not None:
            sender.stopping.set()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's start_jobs without the jobs this process is running: arq checks each id
        it reads from the queue in Redis (a WATCH, EXISTS and ZSCORE round trip each), and
        a running chunk stays in the queue until it ends, so every poll (ten a second once
        a slot is free) went through all of them. Another process's jobs are still checked
        in Redis as before."""
        running = {job_id for job_id, t in self.tasks.items() if not t.done()}
        await super().start_jobs([j for j in job_ids if j.decode() not in running])

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        self._stopping()
        super().handle_sig_wait_for_completion(signum)

    def handle_sig(self, signum: Signals) -> None:
        self._stopping()
        super().handle_sig(signum)


def make_worker(**overrides: Any) -> Worker:
    kwargs = worker_kwargs()
    kwargs.update(overrides)
    ctx = kwargs.setdefault("ctx", {})
    # Created with the worker so that a stop signal reaching it before startup is seen.
    ctx.setdefault("sender", Sender())
    return SendingWorker(**kwargs)
