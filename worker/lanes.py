"""A worker process's lanes: per SMTP server, the messages due to go there and one lane per
connection the server may have, which claims, sends and records them one after the other
(the SENT of one mail and the claim of the one after the next in one write).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from core.models.enums import MessageStatus
from core.services import claims
from core.settings import get_settings
from worker.sending import Sender
from worker.smtp_answers import Outcome as TransportOutcome
from worker.smtp_answers import SendResult
from worker.smtp_dialogue import Announce
from worker.transport import Gate, SmtpTarget, Transport

log = logging.getLogger(__name__)


# What a lane answers for a message: its status afterwards and, when QUEUED, the time of
# its next attempt; NOT_HANDLED when the worker stopped before claiming it.
Outcome = tuple[MessageStatus | None, datetime | None]
NOT_HANDLED: Outcome = tuple([None, None])  # type: ignore[assignment]  # compared by identity


@dataclass
class Work:
    message_id: uuid.UUID
    send: Callable[[claims.Outgoing, Gate], Awaitable[SendResult]]
    failed: Callable[[claims.Outgoing, SendResult], Awaitable[Outcome]]
    # The envelope of the message's mail, where it can be announced behind the content of
    # the mail before it on the same connection (worker/smtp_dialogue.py); None: it cannot.
    announce: Callable[[claims.Outgoing], Announce | None] = lambda _: None
    done: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    def finish(self, outcome: Outcome) -> None:
        if not self.done.done():
            self.done.set_result(outcome)


class Outbox:
    """Per worker process and SMTP server: the messages due to go there, in the order the
    jobs handed them in, and one lane per connection the server may have.

    A lane is where "a connection to server X is free → claim the next message for X"
    happens (`_lane`). A lane holds at most one mail on the wire and one claimed next; at
    the server's 250 it writes that mail's SENT together with the claim of the message
    after the next, and the next mail's content waits, after the server's 354, until that
    write is committed. The claimed next mail's envelope goes behind a mail's content, so
    the server's 250 comes with the next mail's 354.
    """

    def __init__(self, sender: Sender, transport: Transport) -> None:
        self.sender = sender
        self.transport = transport
        self.queues: dict[SmtpTarget, deque[Work]] = {}
        self.lanes: dict[SmtpTarget, set[asyncio.Task[None]]] = {}

    def submit(self, target: SmtpTarget, work: Work) -> asyncio.Future[Outcome]:
        if self.sender.stopping.is_set():
            work.finish(NOT_HANDLED)
            return work.done
        self.queues.setdefault(target, deque()).append(work)
        lanes = self.lanes.setdefault(target, set())
        want = min(get_settings().smtp_connections_per_server, len(self.queues[target]))
        while len(lanes) < want:
            task = asyncio.create_task(self._lane(target), name=f"lane {target.describe()}")
            lanes.add(task)
            task.add_done_callback(lanes.discard)
        return work.done

    def _next(self, target: SmtpTarget) -> Work | None:
        queue = self.queues.get(target)
        while queue and not self.sender.stopping.is_set():
            work = queue.popleft()
            if not work.done.done():
                return work
        return None

    async def _claim(self, work: Work | None) -> claims.Outgoing | None:
        """Claim `work`'s message (None: nothing to send; a failed claim hands the work
        back to its job unhandled)."""
        if work is None:
            return None
        try:
            return await self.sender.claim(work.message_id)
        except Exception:
            log.exception("claiming message %s failed", work.message_id)
            work.finish(NOT_HANDLED)  # its job puts it back in the queue
            return None

    async def _ahead(self, target: SmtpTarget, sent: tuple[Work, claims.Outgoing, str] | None
                     ) -> tuple[Work | None, claims.Outgoing | None]:
        """Claim the lane's next message, with the SENT of the mail just accepted (`sent`)
        in the same write: one statement a mail. Returns the next work and its message."""
        upcoming = self._next(target)
        if sent is None:
            return upcoming, await self._claim(upcoming)
        work, msg, detail = sent
        try:
            won, claimed = await self.sender.record_sent_and_claim(
                msg, detail, upcoming.message_id if upcoming else None)
        except Exception:
            log.exception("message %s: recording SENT failed; its lease will run out", msg.id)
            work.finish((MessageStatus.SENDING, None))
            if upcoming is not None:
                upcoming.finish(NOT_HANDLED)  # its job puts it back in the queue
            return None, None
        work.finish((MessageStatus.SENT if won else None, None))
        return upcoming, claimed

    async def _lane(self, target: SmtpTarget) -> None:
        me = asyncio.current_task()
        work: Work | None = None
        msg: claims.Outgoing | None = None
        # The write under way: the SENT of the previous mail and the claim of the message
        # after the current one. The current mail's content waits for it (the gate).
        ahead: asyncio.Future[tuple[Work | None, claims.Outgoing | None]] | None = None

        async def previous_written() -> Announce | None:
            # Written already (most mails): no pass through the event loop.
            if ahead is None:
                return None
            if not ahead.done():
                await asyncio.wait([ahead])
            if ahead.cancelled() or ahead.exception() is not None:
                return None
            # The message claimed to go next on this connection: its envelope can follow
            # this content (one round trip a mail).
            upcoming, claimed = ahead.result()
            if upcoming is None or claimed is None or self.sender.stopping.is_set():
                return None
            try:
                return upcoming.announce(claimed)
            except Exception:  # it then goes the plain way, its own build says what failed
                log.exception("announcing message %s failed", claimed.id)
                return None

        async with self.transport.slot(target):
            try:
                work = self._next(target)
                msg = await self._claim(work)
                ahead = asyncio.ensure_future(self._ahead(target, None))
                while work is not None:
                    sent: tuple[Work, claims.Outgoing, str] | None = None
                    if msg is None:
                        work.finish((None, None))  # sent, taken or changed meanwhile
                    else:
                        current, msg = msg, None
                        sent = await self._send(work, current, previous_written)
                    if ahead is not None:
                        work, msg = await ahead  # claimed while this one was on the wire
                    else:
                        work, msg = None, None
                    if work is None:  # one may have come meanwhile
                        work = self._next(target)
                        msg = await self._claim(work)
                    if sent is None and work is None:
                        ahead = None
                        break
                    ahead = asyncio.ensure_future(self._ahead(target, sent))
                    if work is None:  # the SENT of the last mail (and a claim if one came)
                        work, msg = await ahead
                        ahead = None
                        if work is None:
                            # One may have been submitted while that write ran, after
                            # the write looked at the queue: this lane takes it, since
                            # the submitter saw the lane still running.
                            work = self._next(target)
                            msg = await self._claim(work)
                        if work is not None:
                            ahead = asyncio.ensure_future(self._ahead(target, None))
                # No await since the queue was found empty: a message submitted from now
                # on sees this lane gone and starts another.
                self.lanes[target].discard(me)  # type: ignore[arg-type]
            finally:
                leftover: list[uuid.UUID] = [msg.id] if msg is not None else []
                if ahead is not None:
                    with contextlib.suppress(BaseException):
                        w, m = await asyncio.shield(ahead)
                        if m is not None:
                            leftover.append(m.id)
                        if w is not None:
                            w.finish(NOT_HANDLED)
                if leftover:  # stopped between their claim and their send
                    with contextlib.suppress(BaseException):
                        await asyncio.shield(claims.release_claims(leftover, reason=RELEASED))
                    for mid in leftover:
                        self.sender.release(mid)
                if work is not None:
                    work.finish(NOT_HANDLED)

    async def _send(self, work: Work, msg: claims.Outgoing,
                    gate: Callable[[], Awaitable[Announce | None]]
                    ) -> tuple[Work, claims.Outgoing, str] | None:
        """Send `msg` (its content once `gate` opens). A 250 is returned for the lane's
        next write; any other outcome is recorded here."""
        try:
            result = await work.send(msg, gate)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(claims.release_claims([msg.id], reason=RELEASED))
            self.sender.release(msg.id)
            work.finish(NOT_HANDLED)
            raise
        except Exception as exc:  # a bug building the mail: not sent, try again later
            log.exception("sending message %s failed", msg.id)
            result = SendResult(TransportOutcome.TEMPORARY, f"the worker failed: {exc!r}")
        log.info("message %s: %s", result.outcome.value, result.detail,
                 extra={"message_id": str(msg.id)})
        if result.outcome == TransportOutcome.SENT:
            return work, msg, result.detail
        try:
            work.finish(await work.failed(msg, result))
        except Exception:  # recording a failure failed: the lease runs out
            log.exception("message %s: recording its outcome failed", msg.id)
            work.finish((MessageStatus.SENDING, None))
        finally:
            self.sender.release(msg.id)
        return None

    def stop(self) -> None:
        """Take no more messages (SIGTERM): those waiting go back to their jobs unhandled,
        the lanes finish the mails they hold."""
        self.sender.stopping.set()
        for queue in self.queues.values():
            while queue:
                queue.popleft().finish(NOT_HANDLED)

    async def close(self) -> None:
        self.stop()
        lanes = [t for ts in self.lanes.values() for t in ts]
        if lanes:
            await asyncio.wait(lanes)


RELEASED = "worker stopped before sending it; queued again"
