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

from core.settings import get_settings
from schema.context import Context
from schema.live import CLOSE_FELL_BEHIND, CLOSE_FELL_BEHIND_REASON, BoundedQueue

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
    """One subscriber's operation on a shared selection."""

    def __init__(self, handler: LiveTransportWSHandler, operation: Operation[Any, Any]) -> None:
        self.handler = handler
        self.operation = operation
        self.queue: BoundedQueue[Frame] = BoundedQueue(
            limit=get_settings().ws_queue_size, on_overflow=handler.fall_behind)
        self.prefix = b'{"id":' + _dumps(operation.id) + b',"type":"next","payload":'


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
        for member in list(self.members):
            if isinstance(frame, _Finished):
                member.queue.offer(frame)
                member.queue.close()
            else:
                member.queue.offer(frame, key)

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


def _transport_of(send: Any, depth: int = 0) -> Any:
    """The asyncio transport under an ASGI `send` callable: uvicorn's protocol object owns
    the callable, possibly wrapped by middleware closures."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None or depth > 8:
        return transport
    for cell in getattr(send, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value):
            transport = _transport_of(value, depth + 1)
            if transport is not None:
                return transport
    return None


def _abort(websocket: Any) -> None:
    """Drop the TCP connection under a websocket."""
    transport = _transport_of(getattr(getattr(websocket, "ws", None), "_send", None))
    if transport is None:
        log.warning("cannot drop a websocket that fell behind: no transport found")
        return
    transport.abort()


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
            try:
                await self._send_text(member.prefix + frame + b"}")
            except WebSocketDisconnect:
                return
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _send_text(self, data: bytes) -> None:
        # graphql-transport-ws messages are text frames.
        await self.websocket.ws.send_text(data.decode())  # type: ignore[attr-defined]
