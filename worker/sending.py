"""The worker process's side of claiming and recording: one claim token per process, claims
and SENT writes grouped across connections, the lease heartbeat, ordered publishing.

A connection that is free claims exactly the message it sends next (worker/jobs.py). When
the server accepts a mail, its SENT and the claim of the message after the next one go in
one write (one statement a mail), which runs while the next mail's envelope is exchanged;
that mail's content waits for the write, so a crash can send again at most one mail per
connection (the one between the server's 250 and the write). Writes are grouped ("group
commit"): while one write runs, the requests that arrive wait and go together in the next,
at most `sent_write_max` a write; an idle writer gathers for `sent_write_linger_seconds`
(1 ms) first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from core.services import claims, recording
from core.services.bulk import after_rejection_sent
from core.settings import get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# A SENT write that fails (the database restarting) is tried again this many times before
# the message is left to its lease (then sent again, same Message-ID: never lost).
SENT_WRITE_TRIES = 5
# How long the publisher gathers committed writes before publishing them together. Short:
# it adds to every live dashboard's delay (issue #12: p99 <= 50 ms); under a bulk the writes
# that arrive while one round is being published go together in the next round anyway.
PUBLISH_LINGER_SECONDS = 0.005
# Under a bulk (the last round had this many transitions or more) the publisher gathers
# longer: fewer, larger rounds mean fewer bulk-state reads and Redis messages, and an api
# runs a shared subscription once per Redis message. Dashboards see a bulk's changes at
# most this much later; a quiet company's single changes keep the short wait.
PUBLISH_BUSY_TRANSITIONS = 16
PUBLISH_LINGER_BUSY_SECONDS = 0.025


class GroupWriter(Generic[T, R]):
    """Runs `write` on the items submitted while the previous write was running, in one
    call (at most `max_items`); each submitter gets its own item's result."""

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]], max_items: int,
                 name: str, concurrency: int = 4, linger: float = 0.0) -> None:
        self._write = write
        self._max = max_items
        self._linger = linger
        self._name = name
        self._concurrency = concurrency
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Items in the same write (when they fit in one), each with its own result."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        self._pending.extend(zip(items, futs, strict=True))
        if len(self._tasks) < self._concurrency:
            task = asyncio.create_task(self._run(), name=self._name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # The write runs in the writer's task: it goes on when the submitter is cancelled (a
        # stopping worker), so a mail the server accepted is still recorded. Each result
        # is awaited as it is (all come from the same write): no gather or shield, whose
        # callbacks cost the submitter two more passes through the event loop a write.
        try:
            for fut in futs:
                await fut
        except BaseException:
            for fut in futs:  # the same failure: retrieved, not logged as never retrieved
                if fut.done() and not fut.cancelled():
                    fut.exception()
            raise
        return [fut.result() for fut in futs]

    async def _run(self) -> None:
        me = asyncio.current_task()
        try:
            if self._linger > 0 and len(self._pending) < self._max:
                # Gather the requests of the next moment (other connections' 250s).
                await asyncio.sleep(self._linger)
            while self._pending:
                batch, self._pending = self._pending[:self._max], self._pending[self._max:]
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as exc:  # each submitter sees the failure of its write
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            # Out of the set as soon as it found nothing pending (no await in between): a
            # submitter that comes before the done callback would otherwise count this
            # task as running, start none, and its items would wait for the next submit.
            self._tasks.discard(me)  # type: ignore[arg-type]

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.wait(list(self._tasks))


class Sender:
    """Per worker process: its claim token, the messages it holds, the grouped writers,
    the lease heartbeat, the publisher, and whether it is stopping (SIGTERM)."""

    def __init__(self) -> None:
        s = get_settings()
        self.token = uuid.uuid4().hex
        self.held: set[uuid.UUID] = set()
        self.stopping = asyncio.Event()
        # One writer for both: a lane hands over its SENT and asks for its next message at
        # the same moment, and both go in one statement (claims.sent_and_claim).
        self._writes: GroupWriter[tuple[bool, uuid.UUID, str], object] = GroupWriter(
            self._write, s.sent_write_max, "claim-and-sent-writer",
            linger=s.sent_write_linger_seconds)
        self._to_publish: asyncio.Queue[tuple[list[recording.Transition],
                                              list[claims.Outgoing]]] = asyncio.Queue()
        self._sent_rows: dict[uuid.UUID, claims.Outgoing] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._heartbeat(), name="lease-heartbeat"),
                       asyncio.create_task(self._publisher(), name="publisher")]

    async def close(self) -> None:
        """Finish the writes and publishing under way, then stop the heartbeat."""
        await self._writes.drain()
        if self._tasks:
            await self._to_publish.join()
        else:  # never started: publish what its writes left here
            items = []
            while not self._to_publish.empty():
                items.append(self._to_publish.get_nowait())
                self._to_publish.task_done()
            await recording.publish_transitions([t for ts, _ in items for t in ts])
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    # --- claims ---------------------------------------------------------------------

    async def claim(self, message_id: uuid.UUID) -> claims.Outgoing | None:
        """Claim one message to send right now (None: taken, done or not due)."""
        if message_id in self.held:
            return None
        self.held.add(message_id)  # two tasks of this process never claim the same one
        try:
            claimed = await self._writes.submit((False, message_id, ""))
            assert claimed is None or isinstance(claimed, claims.Outgoing)
        except BaseException:
            self.held.discard(message_id)
            raise
        if claimed is None:
            self.held.discard(message_id)
        return claimed

    # --- SENT -------------------------------------------------------------------------

    async def record_sent(self, msg: claims.Outgoing, detail: str) -> bool:
        """SENDING → SENT right after the server's 250; returns once committed (False:
        another worker had taken the message over)."""
        return (await self.record_sent_and_claim(msg, detail, None))[0]

    async def record_sent_and_claim(self, msg: claims.Outgoing, detail: str,
                                    next_id: uuid.UUID | None
                                    ) -> tuple[bool, claims.Outgoing | None]:
        """record_sent and claim(next_id) in the same write (one statement, one commit):
        (whether this worker recorded the SENT, the next message claimed or None)."""
        if next_id in self.held:  # another task of this process has it
            next_id = None
        items = [(True, msg.id, detail)]
        if next_id is not None:
            items.append((False, next_id, ""))
            self.held.add(next_id)
        self._sent_rows[msg.id] = msg
        try:
            results = await self._writes.submit_many(items)
        except BaseException:
            if next_id is not None:
                self.held.discard(next_id)
            raise
        finally:
            self._sent_rows.pop(msg.id, None)
            self.held.discard(msg.id)
        claimed = results[1] if next_id is not None else None
        assert claimed is None or isinstance(claimed, claims.Outgoing)
        if claimed is None and next_id is not None:
            self.held.discard(next_id)
        return bool(results[0]), claimed

    async def _write(self, items: list[tuple[bool, uuid.UUID, str]]) -> list[object]:
        """The SENTs and claims submitted together: one statement (PostgreSQL). A failed
        write is tried again (the database restarting) before the SENTs are left to their
        leases (then sent again, same Message-ID: never lost) and the claims fail."""
        sent = [(mid, detail) for is_sent, mid, detail in items if is_sent]
        to_claim = [mid for is_sent, mid, _ in items if not is_sent]
        for attempt in range(1, SENT_WRITE_TRIES + 1):
            try:
                sent_t, claimed, claim_t = await claims.sent_and_claim(self.token, sent, to_claim)
                break
            except Exception:
                if attempt == SENT_WRITE_TRIES or not sent:
                    if sent:
                        log.exception("could not record %d mails as SENT; their leases will "
                                      "run out and they will be sent again", len(sent))
                    raise
                await asyncio.sleep(0.2 * 2 ** attempt)
        done = {t.message_id for t in sent_t}
        rows = [self._sent_rows[i] for i, _ in sent if i in done and i in self._sent_rows]
        self._to_publish.put_nowait((claim_t + sent_t, rows))
        by_id = {m.id: m for m in claimed}
        return [(mid in done) if is_sent else by_id.get(mid) for is_sent, mid, _ in items]

    def release(self, message_id: uuid.UUID) -> None:
        """The message's outcome was recorded another way (failure, release on stop)."""
        self.held.discard(message_id)

    # --- background -----------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Renew the lease of every message this process holds, while it lives."""
        every = get_settings().lease_renew_every
        while True:
            await asyncio.sleep(every)
            if not self.held:
                continue
            try:
                await claims.renew_leases(self.token, list(self.held))
            except Exception:
                log.warning("could not renew %d leases", len(self.held), exc_info=True)

    async def _publisher(self) -> None:
        """Publish committed transitions in commit order, off the send path, several
        writes at a time; then what waits on SENT (anonymisation after a rejection)."""
        busy = False
        while True:
            items = [await self._to_publish.get()]
            # A short wait gathers the writes of a busy moment into one round of publishing.
            await asyncio.sleep(PUBLISH_LINGER_BUSY_SECONDS if busy else PUBLISH_LINGER_SECONDS)
            while not self._to_publish.empty():
                items.append(self._to_publish.get_nowait())
            transitions = [t for ts, _ in items for t in ts]
            busy = len(transitions) >= PUBLISH_BUSY_TRANSITIONS
            try:
                await recording.publish_transitions(transitions)
                sent = [m for _, rows in items for m in rows]
                if sent:
                    await after_rejection_sent(sent)
            except Exception:
                log.exception("publishing %d writes failed", len(items))
            finally:
                for _ in items:
                    self._to_publish.task_done()
