"""Shared subscriptions: one execution of a status-change or calendar-reply selection for
every subscriber of the same company, viewer class, document and variables
(api/live_ws.py makes and joins them).

The selection runs without the executor when schema/live_compiled.py can make it (a
selection of plain fields: one query of the needed columns a Redis message, the results
built directly); otherwise strawberry executes it, `messageStatusChanged` a Redis
message's changes at a time (as `messageStatusChanges`, sent change by change). Each
result is encoded once; each member's operation only hands the bytes to its connection.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from functools import lru_cache
from typing import Any, Protocol

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
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from api.ws_direct import DirectWriter
from core import models
from core.metrics import GRAPHQL_OPERATIONS, GRAPHQL_SUBSCRIPTIONS
from core.settings import get_settings
from schema.context import Context
from schema.live import message_key
from schema.live_compiled import Plan, compile_selection
from schema.live_queue import BoundedQueue
from schema.subscriptions import BATCH_MAX, listen_for, next_events

log = logging.getLogger(__name__)


class Connection(Protocol):
    """What a shared selection needs of a subscriber's websocket handler (api/live_ws.py)."""

    direct: DirectWriter | None
    closing: bool
    context: Context
    schema: Any
    root_value: Any

    def write_later(self, frame: bytes) -> None: ...

    def fall_behind(self) -> None: ...


SHARED_FIELDS = frozenset({"messageStatusChanged", "messageStatusChanges",
                           "interviewResponseChanged"})

GroupKey = tuple[Any, ...]
GROUPS: dict[GroupKey, SharedSelection] = {}


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


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def _internal_error() -> GraphQLError:
    return GraphQLError("Internal server error.", extensions={"code": "INTERNAL_SERVER_ERROR"})


class Finished:
    """The end of a shared stream: errors to send (or none), then `complete`."""

    __slots__ = ("errors",)

    def __init__(self, errors: list[GraphQLError] | None = None) -> None:
        self.errors = errors


Frame = bytes | Finished


class Member:
    """One subscriber's operation on a shared selection.

    A frame goes straight onto the connection when nothing of this member is pending and
    the connection takes writes (no task switch: the usual case for a reader that keeps
    up), made once for all uncompressed connections; otherwise it waits in the member's
    bounded queue for the member's task.
    """

    def __init__(self, handler: Connection, operation: Operation[Any, Any]) -> None:
        self.handler = handler
        self.operation = operation
        self.queue: BoundedQueue[Frame] = BoundedQueue(
            limit=get_settings().ws_queue_size, on_overflow=handler.fall_behind)
        self.prefix = b'{"id":' + dumps(operation.id) + b',"type":"next","payload":'
        self.busy = False  # the member's task is sending

    def _direct(self) -> DirectWriter | None:
        """The connection's writer when a frame may go straight onto it: nothing of this
        member pending and the connection taking writes."""
        direct = self.handler.direct
        if (direct is not None and not self.busy and not len(self.queue)
                and not self.queue.overflowed and not self.queue.closed
                and not self.handler.closing and direct.ready()):
            return direct
        return None

    def offer_many(self, messages: list[bytes], keys: list[Any],
                   joined: dict[bytes, bytes]) -> None:
        """`next` messages (one result, or one Redis message's changes) in one hand-off:
        onto the connection's next write when it takes them, else into the queue one by
        one. `joined` holds the frames already made for plain connections, by prefix."""
        direct = self._direct()
        if direct is not None:
            try:
                if direct.plain():
                    frames = joined.get(self.prefix)
                    if frames is None:
                        frames = joined[self.prefix] = b"".join(
                            WsFrame(Opcode.TEXT, m).serialize(mask=False) for m in messages)
                    self.handler.write_later(frames)
                else:
                    direct.write_many(messages)
                return
            except Exception:
                log.debug("direct websocket write failed; queueing", exc_info=True)
        for message, key in zip(messages, keys, strict=True):
            self.queue.offer(message, key)


class SharedSelection:
    """One execution of a subscription for every subscriber with the same key."""

    def __init__(self, key: GroupKey, handler: Connection,
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
        # A selection of plain fields is made without the executor (schema/live_compiled.py).
        self.plan: Plan | None = None
        if get_settings().live_compiled:
            try:
                self.plan = compile_selection(operation.query, operation.operation_name,
                                              operation.variables)
            except Exception:  # executed as written
                log.exception("could not compile a subscription")
        if self.plan is not None:
            self.task = asyncio.create_task(self._run_plan(self.plan),
                                            name="shared-subscription")
            return
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
        if isinstance(frame, Finished):
            for member in list(self.members):
                member.queue.offer(frame)
                member.queue.close()
            return
        self._broadcast_many([frame], [key])

    def _broadcast_many(self, payloads: list[bytes], keys: list[Any]) -> None:
        """`next` payloads of one Redis message, handed to each member at once. The whole
        `next` messages are made once per operation id (clients mostly use the same), and
        for plain connections their websocket frames once."""
        messages: dict[bytes, list[bytes]] = {}
        joined: dict[bytes, bytes] = {}  # operation id prefix -> the batch's frames, once
        for member in list(self.members):
            batch = messages.get(member.prefix)
            if batch is None:
                batch = messages[member.prefix] = [
                    member.prefix + p + b"}" for p in payloads]
            member.offer_many(batch, keys, joined)

    async def _run_plan(self, plan: Plan) -> None:
        """The compiled selection: each Redis message's changes read in one query of the
        columns the selection shows, made into results without the executor."""
        errors: list[GraphQLError] | None = None
        GRAPHQL_SUBSCRIPTIONS.inc()
        columns = plan.columns

        def prefetch(delivery: Any) -> None:
            delivery.prefetch(models.Message, "message_id", columns)

        try:
            async with listen_for(self.context, plan.accept, key=message_key,
                                  prefetch=prefetch) as queue:
                while True:
                    items = await next_events(queue, BATCH_MAX)
                    if not items:
                        continue
                    rows = await items[0][1].values(models.Message, "message_id", columns)
                    results: list[dict[str, Any]] = []
                    keys: list[Any] = []
                    for event, _ in items:
                        try:
                            row = rows.get(uuid.UUID(str(event.get("message_id"))))
                            if row is None:
                                continue  # gone since
                            results.append(plan.item(event, row))
                        except (ValueError, TypeError, KeyError):
                            log.warning("skipped a malformed status event", exc_info=True)
                            continue
                        keys.append(message_key(event))
                    if not results:
                        continue
                    key = plan.response_key
                    if plan.many:
                        self._broadcast(dumps({"data": {key: results}}))
                    else:
                        self._broadcast_many([dumps({"data": {key: r}}) for r in results],
                                             keys)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared subscription failed")
            errors = [_internal_error()]
        finally:
            GRAPHQL_SUBSCRIPTIONS.dec()
            GRAPHQL_OPERATIONS.labels("subscription", "error" if errors else "ok").inc()
            self._end(errors)

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
                            self._broadcast(dumps(one), keys[i] if keys else None)
                        continue
                    payload: dict[str, Any] = {"data": data}
                    if self.batch_key is not None and data is not None:
                        payload["data"] = None  # a batch with errors: not split
                    if result.errors:
                        payload["errors"] = [e.formatted for e in result.errors]
                    if result.extensions:
                        payload["extensions"] = result.extensions
                    self._broadcast(dumps(payload), key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared subscription failed")
            errors = [_internal_error()]
        finally:
            self._end(errors)

    def _end(self, errors: list[GraphQLError] | None) -> None:
        self.finished = True
        if GROUPS.get(self.key) is self:
            del GROUPS[self.key]
        self._broadcast(Finished(errors))

    def leave(self, member: Member) -> None:
        self.members.discard(member)
        if not self.members and not self.finished:
            self.finished = True
            if GROUPS.get(self.key) is self:
                del GROUPS[self.key]
            self.task.cancel()



def viewer_class(context: Context) -> Any:
    # Results differ between viewers only by what documents they may see: admins see all.
    employee = context.viewer
    return "admin" if employee.is_admin else employee.id
