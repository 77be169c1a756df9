"""graphql-transport-ws with shared subscriptions and bounded per-connection queues.

Strawberry runs every subscription operation on its own: one execution of the selection
per event per subscriber. Here, subscriptions to the company's event streams
(`messageStatusChanged`, `interviewResponseChanged`) with the same document, operation
name and variables, from viewers who see the same things (an admin, or one employee), and
of the same company, share one `SharedSelection`: the selection is executed once per
event, its `next` payload encoded once, and each subscriber's operation only sends the
bytes. Everything else (queries, mutations, `bulkOperationProgress`) runs as strawberry
runs it.

Each subscriber has a bounded queue (RECRUITMAIL_WS_QUEUE_SIZE). A connection that reads
too slowly first gets status changes of one message merged, then is closed with
CLOSE_FELL_BEHIND (4420); the others never wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import Any

import orjson
from graphql import FieldNode, OperationType, get_operation_ast, parse
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
from websockets.protocol import State

from core.settings import get_settings
from schema.bounded_queue import BoundedQueue
from schema.context import Context
from schema.live import CLOSE_FELL_BEHIND, CLOSE_FELL_BEHIND_REASON

log = logging.getLogger(__name__)

# How long a connection that fell behind gets to take its close frame before it is dropped.
CLOSE_GRACE_SECONDS = 5.0
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
                    direct.write_frame(frame)
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
                    payload: dict[str, Any] = {"data": result.data}
                    if result.errors:
                        payload["errors"] = [e.formatted for e in result.errors]
                    if result.extensions:
                        payload["extensions"] = result.extensions
                    key, self.context.live_key = self.context.live_key, None
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


def _protocol_of(send: Any, depth: int = 0) -> Any:
    """The server protocol object under an ASGI `send` callable (uvicorn's protocol owns
    the callable, possibly wrapped by middleware closures); None when not found."""
    owner = getattr(send, "__self__", None)
    if getattr(owner, "transport", None) is not None or depth > 8:
        return owner
    for cell in getattr(send, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value):
            found = _protocol_of(value, depth + 1)
            if found is not None:
                return found
    return None


def _abort(websocket: Any) -> None:
    """Drop the TCP connection under a websocket."""
    protocol = _protocol_of(getattr(getattr(websocket, "ws", None), "_send", None))
    transport = getattr(protocol, "transport", None)
    if transport is None:
        log.warning("cannot drop a websocket that fell behind: no transport found")
        return
    transport.abort()


class DirectWriter:
    """Text frames written straight to uvicorn's websockets-sansio connection: what its
    ASGI `websocket.send` does (frame with the connection's extensions, write to the
    transport), without the middleware chain and a task switch per frame. Flow control is
    kept: nothing is written while the transport is paused; a connection being closed or
    gone is not written to. Other servers (or uvicorn implementations) use ASGI sends."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    @classmethod
    def of(cls, websocket: Any) -> DirectWriter | None:
        protocol = _protocol_of(getattr(getattr(websocket, "ws", None), "_send", None))
        conn = getattr(protocol, "conn", None)
        needed = ("writable", "disconnected", "close_sent", "handshake_complete",
                  "initial_response")
        if (conn is None or not hasattr(conn, "send_text")
                or not hasattr(conn, "data_to_send")
                or not all(hasattr(protocol, name) for name in needed)
                or not isinstance(protocol.writable, asyncio.Event)):
            return None
        return cls(protocol)

    def ready(self) -> bool:
        p = self.protocol
        return bool(p.writable.is_set() and not p.disconnected and not p.close_sent
                    and p.handshake_complete and p.initial_response is None
                    and not p.transport.is_closing())

    async def wait_writable(self) -> None:
        await self.protocol.writable.wait()

    def write(self, data: bytes) -> None:
        p = self.protocol
        p.conn.send_text(data)
        p.transport.write(b"".join(p.conn.data_to_send()))

    def plain(self) -> bool:
        """No extension (compression) negotiated and nothing half-sent: a server's text
        frame is then the same bytes on every connection (server frames are unmasked)."""
        conn = self.protocol.conn
        return (not conn.extensions and not getattr(conn, "expect_continuation_frame", True)
                and not getattr(conn, "writes", True) and conn.state is State.OPEN)

    def write_frame(self, frame: bytes) -> None:
        """A text frame made once for every plain connection (see `plain`)."""
        self.protocol.transport.write(frame)


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
            _abort(self.websocket)
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
                if frame.errors:
                    await operation.send_initial_errors(frame.errors)
                    return
                break
            member.busy = True
            try:
                await self._send_text(frame)
            except WebSocketDisconnect:
                return
            finally:
                member.busy = False
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _send_text(self, data: bytes) -> None:
        # graphql-transport-ws messages are text frames.
        direct = self.direct
        if direct is not None and not self.closing:
            await direct.wait_writable()
            if direct.ready():
                direct.write(data)
                return
        await self.websocket.ws.send_text(data.decode())  # type: ignore[attr-defined]
