"""graphql-transport-ws with shared subscriptions and bounded per-connection queues.

Strawberry runs every subscription operation on its own: one execution of the selection
per event per subscriber. Here, subscriptions to the company's event streams
(`messageStatusChanged`, `interviewResponseChanged`) with the same document, operation
name and variables, from viewers who see the same things (an admin, or one employee), and
of the same company, share one `SharedSelection`: the selection is executed once per
event, its `next` payload encoded once, and each subscriber's operation only sends the
bytes. Everything else (queries, mutations, `bulkOperationProgress`) runs as strawberry runs it.

Each subscriber has a bounded queue (RECRUITMAIL_WS_QUEUE_SIZE). A connection that reads
too slowly first gets status changes of one message merged, then is closed with
CLOSE_FELL_BEHIND (4420); the others never wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    FieldNode,
    NameNode,
    OperationType,
    get_operation_ast,
    parse,
    print_ast,
    validate,
)
from graphql.error import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from api.ws_direct import DirectWriter, abort
from core.settings import get_settings
from schema.context import Context
from schema.live import CLOSE_FELL_BEHIND, CLOSE_FELL_BEHIND_REASON
from schema.live_queue import BoundedQueue

log = logging.getLogger(__name__)

# How long a connection that fell behind gets to take its close frame before it is dropped.
CLOSE_GRACE_SECONDS = 5.0
# Frames of shared selections are written to a connection at most this often: the frames
# made meanwhile (a bulk chunk's changes) go out in one write, not one system call each.
WRITE_TICK_SECONDS = 0.01
# A connection's queued frames written together, up to about this many bytes.
WRITE_BATCH_BYTES = 65536
SHARED_FIELDS = frozenset({"messageStatusChanged", "interviewResponseChanged"})

GroupKey = tuple[Any, ...]
_GROUPS: dict[GroupKey, SharedSelection] = {}


@lru_cache(maxsize=256)
def shareable(query: str, operation_name: str | None) -> bool:
    """A subscription whose root fields all read the company's event streams."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    op = get_operation_ast(document, operation_name)
    if op is None or op.operation != OperationType.SUBSCRIPTION:
        return False
    fields = op.selection_set.selections
    return bool(fields) and all(
        isinstance(f, FieldNode) and f.name.value in SHARED_FIELDS and not f.directives
        for f in fields)


@lru_cache(maxsize=256)
def batched(query: str, operation_name: str | None) -> tuple[str, str] | None:
    """A valid subscription to `messageStatusChanged` alone, as the same selection of
    `messageStatusChanges` (lists of the changes that arrived together) under the same
    response key: (the rewritten document, the response key); None for anything else."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    op = get_operation_ast(document, operation_name)
    if (op is None or op.operation != OperationType.SUBSCRIPTION
            or len(op.selection_set.selections) != 1 or validate(_core_schema(), document)):
        return None
    field = op.selection_set.selections[0]
    if not isinstance(field, FieldNode) or field.name.value != "messageStatusChanged":
        return None
    key = field.alias.value if field.alias else field.name.value
    field = replace(field, alias=NameNode(value=key), name=NameNode(value="messageStatusChanges"))
    op_batched = replace(op, selection_set=replace(op.selection_set, selections=(field,)))
    return print_ast(replace(document, definitions=tuple(
        op_batched if d is op else d for d in document.definitions))), key


def _core_schema() -> Any:
    from schema import schema

    return schema._schema


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class _Finished:
    """The end of a shared stream: errors to send (or none), then `complete`."""

    __slots__ = ("errors",)

    def __init__(self, errors: list[GraphQLError] | None = None) -> None:
        self.errors = errors


Frame = bytes | _Finished


class Member:
    """One subscriber's operation on a shared selection.

    A frame goes straight onto the connection when nothing of this member is pending and
    the connection takes writes (no task switch: the usual case for a reader that keeps
    up), made once for all uncompressed connections; otherwise it waits in the member's
    bounded queue for the member's task.
    """

    def __init__(self, handler: LiveTransportWSHandler, operation: Operation[Any, Any]) -> None:
        self.handler = handler
        self.operation = operation
        self.queue: BoundedQueue[Frame] = BoundedQueue(
            limit=get_settings().ws_queue_size, on_overflow=handler.fall_behind)
        self.prefix = b'{"id":' + _dumps(operation.id) + b',"type":"next","payload":'
        self.busy = False  # the member's task is sending

    def offer(self, message: bytes, key: Any, frames: dict[bytes, bytes]) -> None:
        direct = self.handler.direct
        if (direct is not None and not self.busy and not len(self.queue)
                and not self.queue.overflowed and not self.queue.closed
                and not self.handler.closing and direct.ready()):
            try:
                if direct.plain():
                    frame = frames.get(message)
                    if frame is None:
                        frame = frames[message] = WsFrame(Opcode.TEXT, message).serialize(
                            mask=False)
                    self.handler.write_later(frame)
                else:
                    direct.write(message)
                return
            except Exception:
                log.debug("direct websocket write failed; queueing", exc_info=True)
        self.queue.offer(message, key)


class SharedSelection:
    """One execution of a subscription for every subscriber with the same key."""

    def __init__(self, key: GroupKey, handler: LiveTransportWSHandler,
                 operation: Operation[Any, Any]) -> None:
        self.key = key
        self.members: set[Member] = set()
        self.finished = False
        source = handler.context
        # A context of its own: results are made for the group, not for the first member.
        self.context = Context(request=source.request, response=source.response,
                               websocket=True, connection_params=source.connection_params)
        assert source.employee is not None and source.company is not None
        self.context.sign_in(source.employee, source.company)
        self.context.shared = True
        self.context.on_fall_behind = self._fall_behind
        self.context.subscribers = lambda: len(self.members)
        self.schema = handler.schema
        self.root_value = handler.root_value
        self.query = operation.query
        self.variables = operation.variables
        self.operation_name = operation.operation_name
        # messageStatusChanged is executed a batch (a Redis message's changes) at a time
        # and sent change by change, as the client asked.
        self.batch_key: str | None = None
        try:
            rewritten = batched(operation.query, operation.operation_name)
        except Exception:  # executed as written
            log.exception("could not batch a subscription")
            rewritten = None
        if rewritten is not None:
            self.query, self.batch_key = rewritten
        self.task = asyncio.create_task(self._run(), name="shared-subscription")

    def _fall_behind(self) -> None:
        # The group's own event queue overflowed: every member missed events.
        for member in list(self.members):
            member.handler.fall_behind()

    def _broadcast(self, frame: Frame, key: Any = None) -> None:
        if isinstance(frame, _Finished):
            for member in list(self.members):
                member.queue.offer(frame)
                member.queue.close()
            return
        # The whole `next` message, once per operation id (clients mostly use the same).
        messages: dict[bytes, bytes] = {}
        frames: dict[bytes, bytes] = {}  # message -> its websocket frame, made once
        for member in list(self.members):
            message = messages.get(member.prefix)
            if message is None:
                message = messages[member.prefix] = member.prefix + frame + b"}"
            member.offer(message, key, frames)

    async def _run(self) -> None:
        errors: list[GraphQLError] | None = None
        try:
            stream = await self.schema.stream(
                self.query, variable_values=self.variables, context_value=self.context,
                root_value=self.root_value, operation_name=self.operation_name)
            async with aclosing(stream):
                first = True
                async for result in stream:
                    if first and isinstance(result, PreExecutionError):
                        errors = list(result.errors or [])
                        return
                    first = False
                    if not isinstance(result, ExecutionResult):
                        errors = [GraphQLError("Incremental delivery is not supported over "
                                               "graphql-transport-ws")]
                        return
                    keys, self.context.live_keys = self.context.live_keys, None
                    key, self.context.live_key = self.context.live_key, None
                    data = result.data
                    if self.batch_key is not None and data is not None and not result.errors:
                        items = data[self.batch_key]
                        keys = keys if keys is not None and len(keys) == len(items) else None
                        for i, item in enumerate(items):
                            one: dict[str, Any] = {"data": {self.batch_key: item}}
                            if result.extensions:
                                one["extensions"] = result.extensions
                            self._broadcast(_dumps(one), keys[i] if keys else None)
                        continue
                    payload: dict[str, Any] = {"data": data}
                    if self.batch_key is not None and data is not None:
                        payload["data"] = None  # a batch with errors: not split
                    if result.errors:
                        payload["errors"] = [e.formatted for e in result.errors]
                    if result.extensions:
                        payload["extensions"] = result.extensions
                    self._broadcast(_dumps(payload), key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared subscription failed")
            errors = [GraphQLError("Internal server error.",
                                   extensions={"code": "INTERNAL_SERVER_ERROR"})]
        finally:
            self.finished = True
            if _GROUPS.get(self.key) is self:
                del _GROUPS[self.key]
            self._broadcast(_Finished(errors))

    def leave(self, member: Member) -> None:
        self.members.discard(member)
        if not self.members and not self.finished:
            self.finished = True
            if _GROUPS.get(self.key) is self:
                del _GROUPS[self.key]
            self.task.cancel()


def _viewer_class(context: Context) -> Any:
    # Results differ between viewers only by what documents they may see: admins see all.
    employee = context.viewer
    return "admin" if employee.is_admin else employee.id


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
        variables = _dumps(operation.variables or {})
        key: GroupKey = (id(asyncio.get_running_loop()), context.company.id,
                         _viewer_class(context), operation.query, operation.operation_name,
                         variables)
        group = _GROUPS.get(key)
        if group is None or group.finished:
            group = _GROUPS[key] = SharedSelection(key, self, operation)
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
            if isinstance(frame, _Finished):
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
