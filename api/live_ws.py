"""graphql-transport-ws with shared subscriptions and bounded per-connection queues.

Strawberry runs every subscription operation on its own: one execution of the selection
per event per subscriber. Here, subscriptions to the company's event streams
(`messageStatusChanged(s)`, `interviewResponseChanged`) with the same document, operation
name and variables, from viewers who see the same things (an admin, or one employee), and
of the same company, share one `SharedSelection`: the selection is executed once per
event, its `next` payload encoded once, and each subscriber's operation only sends the
bytes (api/live_shared.py). Everything else (queries, mutations, `bulkOperationProgress`)
runs as strawberry runs it.

Each subscriber has a bounded queue (RECRUITMAIL_WS_QUEUE_SIZE). A connection that reads
too slowly first gets status changes of one message merged, then is closed with
CLOSE_FELL_BEHIND (4420); the others never wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from api.live_shared import (
    GROUPS,
    Finished,
    GroupKey,
    Member,
    SharedSelection,
    dumps,
    shareable,
    viewer_class,
)
from api.ws_direct import DirectWriter, abort
from schema.context import Context
from schema.live import CLOSE_FELL_BEHIND, CLOSE_FELL_BEHIND_REASON

log = logging.getLogger(__name__)

# How long a connection that fell behind gets to take its close frame before it is dropped.
CLOSE_GRACE_SECONDS = 5.0
# Frames of shared selections are written to a connection at most this often: the frames
# made meanwhile (a bulk chunk's changes) go out in one write, not one system call each.
WRITE_TICK_SECONDS = 0.01
# A connection's queued frames written together, up to about this many bytes.
WRITE_BATCH_BYTES = 65536

class LiveTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler with shared selections and backpressure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closing = False
        self.context.on_fall_behind = self.fall_behind
        self.direct = DirectWriter.of(self.websocket)
        self._out: list[bytes] = []  # frames to write at the next tick, in order
        self._flush_at: asyncio.TimerHandle | None = None
        self._flushed = 0.0

    def write_later(self, frame: bytes) -> None:
        """Queue a plain frame for this connection's next write tick (at once when the
        last write is a tick old)."""
        self._out.append(frame)
        if self._flush_at is None:
            loop = asyncio.get_running_loop()
            when = max(loop.time(), self._flushed + WRITE_TICK_SECONDS)
            self._flush_at = loop.call_at(when, self.flush)

    def flush(self) -> None:
        """Write the frames waiting for the tick (before anything else is sent)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        out, self._out = self._out, []
        self._flushed = asyncio.get_running_loop().time()
        if out and self.direct is not None:
            try:
                self.direct.write_frames(out)
            except Exception:
                log.debug("websocket write failed", exc_info=True)

    def fall_behind(self) -> None:
        """Close this connection with 4420, once, without waiting for it."""
        if self.closing:
            return
        self.closing = True
        log.info("closing a websocket that fell behind (%d operations)", len(self.operations))
        task = asyncio.create_task(self._close_behind(), name="ws-fell-behind")
        task.add_done_callback(self._task_done)

    async def _close_behind(self) -> None:
        try:
            await asyncio.wait_for(
                self.websocket.close(code=CLOSE_FELL_BEHIND, reason=CLOSE_FELL_BEHIND_REASON),
                CLOSE_GRACE_SECONDS)
        except TimeoutError:
            # The client reads nothing, not even the close frame (the server's send buffer
            # is full): drop the connection.
            log.info("dropping a websocket that fell behind and took no close frame")
            abort(self.websocket)
        except Exception:
            log.debug("closing a websocket that fell behind failed", exc_info=True)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        if not (self.context.authenticated
                and shareable(operation.query, operation.operation_name)):
            await super().run_operation(operation)
            return
        context = self.context
        assert context.company is not None
        variables = dumps(operation.variables or {})
        key: GroupKey = (id(asyncio.get_running_loop()), context.company.id,
                         viewer_class(context), operation.query, operation.operation_name,
                         variables)
        group = GROUPS.get(key)
        if group is None or group.finished:
            group = GROUPS[key] = SharedSelection(key, self, operation)
        member = Member(self, operation)
        group.members.add(member)
        try:
            await self._send_frames(member)
        finally:
            group.leave(member)

    async def _send_frames(self, member: Member) -> None:
        operation = member.operation
        while True:
            frame = await member.queue.get()
            if frame is None:
                if member.queue.overflowed:
                    return  # closing with 4420; no `complete` for a dropped stream
                break
            if isinstance(frame, Finished):
                self.flush()
                if frame.errors:
                    await operation.send_initial_errors(frame.errors)
                    return
                break
            batch, size = [frame], len(frame)
            while size < WRITE_BATCH_BYTES and isinstance(member.queue.peek(), bytes):
                more = member.queue.get_nowait()
                assert isinstance(more, bytes)
                batch.append(more)
                size += len(more)
            member.busy = True
            try:
                await self._send_texts(batch)
            except WebSocketDisconnect:
                return
            finally:
                member.busy = False
        self.flush()
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _send_texts(self, batch: list[bytes]) -> None:
        # graphql-transport-ws messages are text frames; a batch is written at once.
        direct = self.direct
        if direct is not None and not self.closing:
            await direct.wait_writable()
            self.flush()
            if direct.ready():
                direct.write_many(batch)
                return
        self.flush()
        for data in batch:
            await self.websocket.ws.send_text(data.decode())  # type: ignore[attr-defined]
