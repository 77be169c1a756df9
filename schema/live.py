"""Live events of a company, fanned out in memory to every subscriber of this process.

One `CompanyHub` per company (per event loop) holds the only Redis subscription to the
company's channel and hands each event to its listeners. A listener is a bounded queue:

- it never blocks the hub: `offer` only appends;
- once its reader has fallen behind (its oldest pending event waited BEHIND_SECONDS, or
  it is full), a new event replaces a still-pending one with the same coalescing key (the
  same message), keeping the older one's `previous` status: the reader sees one change
  from where it was to where it is now instead of every step between; a reader that keeps
  up gets every event;
- when it is full and nothing merges, it overflows: it stops taking events and calls its
  `on_overflow` (the websocket layer closes that connection with CLOSE_FELL_BEHIND; the
  client subscribes again and re-reads the state from the database).

What an event needs from the database is loaded once per Redis message for every listener:
`Delivery.row(model, pk)` loads the rows of every event of the same PUBLISH (a bulk chunk
is one) in one query, and every subscriber awaits the same result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from redis.exceptions import RedisError
from tortoise.models import Model

from core import events
from core.redis import get_redis
from core.row_columns import row_columns
from schema.live_queue import BEHIND_SECONDS, BoundedQueue

log = logging.getLogger(__name__)

RESUBSCRIBE_MIN_SECONDS = 0.05
RESUBSCRIBE_MAX_SECONDS = 5.0
# graphql-transport-ws leaves 4000-4999 to applications; the protocol itself uses 4400,
# 4401, 4403, 4406, 4408, 4409, 4429, 4500. This one means "you read too slowly: events
# were dropped for you; subscribe again and re-read the state".
CLOSE_FELL_BEHIND = 4420
CLOSE_FELL_BEHIND_REASON = "Subscriber fell behind; subscribe again and re-read"

class Delivery:
    """The events of one Redis message, with their rows loaded once for all listeners."""

    __slots__ = ("_loads", "company_id", "events")

    def __init__(self, company_id: uuid.UUID, batch: list[dict[str, Any]]) -> None:
        self.company_id = company_id
        self.events = batch
        self._loads: dict[tuple[str, str, tuple[str, ...] | None], asyncio.Future[dict[Any, Any]]] = {}

    def prefetch(self, model: type[Model], field: str,
                 columns: tuple[str, ...] | None = None) -> asyncio.Future[dict[Any, Any]]:
        """Start loading the company's rows of `model` named by event[field] of every event
        of this delivery, in one query, unless already started; the hub calls it as soon
        as a listener accepts an event, so the query runs while earlier events are still
        being executed. With `columns` (which must hold "id"): those columns only, as
        dicts (`related__column` reads a column of a related row)."""
        slot = (model.__name__, field, columns)
        loading = self._loads.get(slot)
        if loading is None:
            loading = self._loads[slot] = asyncio.ensure_future(
                self._load(model, field, columns))
            loading.add_done_callback(_retrieve)
        return loading

    async def _load(self, model: type[Model], field: str,
                    columns: tuple[str, ...] | None) -> dict[Any, Any]:
        ids: set[uuid.UUID] = set()
        for event in self.events:
            with contextlib.suppress(ValueError, TypeError):
                if event.get(field) is not None:
                    ids.add(uuid.UUID(str(event[field])))
        if not ids:
            return {}
        if columns is not None:
            return await row_columns(model, self.company_id, ids, columns)
        # By id alone, the company checked here (core/row_columns.py says why).
        return {r.pk: r for r in await model.filter(id__in=list(ids))
                if getattr(r, "company_id", None) == self.company_id}

    async def _loaded(self, model: type[Model], field: str,
                      columns: tuple[str, ...] | None = None) -> dict[Any, Any]:
        loading = self.prefetch(model, field, columns)
        try:
            return await asyncio.shield(loading)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Let the next caller try again rather than sharing one failure forever.
            if self._loads.get((model.__name__, field, columns)) is loading:
                del self._loads[(model.__name__, field, columns)]
            raise

    async def values(self, model: type[Model], field: str,
                     columns: tuple[str, ...]) -> dict[Any, dict[str, Any]]:
        """`columns` of the rows every event of this delivery names in event[field], by
        id, loaded once for every listener that asks for the same columns."""
        return await self._loaded(model, field, columns)

    async def rows(self, model: type[Model], field: str) -> dict[Any, Any]:
        """Every row of `model` the events of this delivery name in event[field], by id."""
        return dict(await asyncio.shield(self.prefetch(model, field)))

    async def row(self, model: type[Model], field: str, pk: Any) -> Any:
        """The company's row of `model` whose id is event[field]; None when gone.

        One query loads the rows of every event of this delivery; every subscriber awaits
        that query's result.
        """
        try:
            key = uuid.UUID(str(pk))
        except (ValueError, TypeError):
            return None
        return (await self._loaded(model, field)).get(key)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A failed prefetch nobody awaited must not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


Item = tuple[dict[str, Any], Delivery]


def _keep_previous(old: Item, new: Item) -> Item:
    """Two status changes of one message as one: from the older's `previous` to now."""
    if "previous" in old[0]:
        return {**new[0], "previous": old[0]["previous"]}, new[1]
    return new


class Listener(BoundedQueue[Item]):
    """One subscriber's queue of the company's events it accepts."""

    def __init__(self, *, limit: int, behind: int | None = None,
                 accept: Callable[[dict[str, Any]], bool] | None = None,
                 key: Callable[[dict[str, Any]], Any] | None = None,
                 on_overflow: Callable[[], None] | None = None,
                 weight: Callable[[], int] | None = None,
                 prefetch: Callable[[Delivery], Any] | None = None,
                 behind_seconds: float = BEHIND_SECONDS) -> None:
        super().__init__(limit=limit, behind=behind, behind_seconds=behind_seconds,
                         merge=_keep_previous, on_overflow=on_overflow)
        self.accept = accept
        self.key = key
        self.prefetch = prefetch
        # How many GraphQL subscriptions this listener serves (a shared selection: many).
        self.weight = weight or (lambda: 1)

    def deliver(self, event: dict[str, Any], delivery: Delivery) -> None:
        if self.accept is not None and not self.accept(event):
            return
        if self.prefetch is not None:
            self.prefetch(delivery)
        self.offer((event, delivery), self.key(event) if self.key is not None else None)


class CompanyHub:
    """The one Redis subscription of a company in this process, and its listeners."""

    def __init__(self, company_id: uuid.UUID, registry: dict[Any, CompanyHub],
                 registry_key: Any) -> None:
        self.company_id = company_id
        self.channel = events.company_channel(company_id)
        self.listeners: set[Listener] = set()
        self._registry = registry
        self._registry_key = registry_key
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._pump(), name=f"live:{company_id}")

    async def _pump(self) -> None:
        # Redis restarts must not end live dashboards: subscribe again with backoff. Events
        # published meanwhile are lost (pub/sub is best effort; the database has it all).
        delay = RESUBSCRIBE_MIN_SECONDS
        while True:
            pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if not self._ready.done():
                    self._ready.set_result(None)
                delay = RESUBSCRIBE_MIN_SECONDS
                while True:
                    msg = await pubsub.get_message(timeout=30.0)
                    if msg is not None:
                        self._dispatch(msg.get("data"))
            except (RedisError, OSError) as exc:
                log.warning("event subscription of company %s lost (%r); resubscribing",
                            self.company_id, exc)
            except Exception:
                log.exception("event subscription of company %s failed; resubscribing",
                              self.company_id)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_SECONDS)

    def _dispatch(self, data: Any) -> None:
        try:
            event = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            log.warning("dropped a malformed event on %s", self.channel)
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "batch":
            batch = [e for e in event.get("events") or [] if isinstance(e, dict)]
        else:
            batch = [event]
        delivery = Delivery(self.company_id, batch)
        listeners = list(self.listeners)
        for one in batch:
            for listener in listeners:
                listener.deliver(one, delivery)

    async def ready(self) -> None:
        """Wait until Redis confirmed the subscription (events published later arrive)."""
        await asyncio.wait({self._ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.done():
            self._task.result()
            raise RuntimeError("the event subscription ended")

    def remove(self, listener: Listener) -> None:
        self.listeners.discard(listener)
        if not self.listeners and self._registry.get(self._registry_key) is self:
            del self._registry[self._registry_key]
            self._task.cancel()


# (event loop, channel) -> hub. Tests and the CLI may run several loops in one process.
_HUBS: dict[Any, CompanyHub] = {}


def subscriptions(channel: str) -> int:
    """GraphQL subscriptions of this process listening on a company channel."""
    return sum(listener.weight() for (_, ch), hub in list(_HUBS.items()) if ch == channel
               for listener in list(hub.listeners))


class listen:
    """`async with listen(company_id, Listener(limit=...)) as listener:` registers the
    listener on the company's hub (subscribing to Redis first when it is the first) and
    removes it after."""

    def __init__(self, company_id: uuid.UUID, listener: Listener) -> None:
        self.company_id = company_id
        self.listener = listener
        self.hub: CompanyHub | None = None

    async def __aenter__(self) -> Listener:
        registry_key = (id(asyncio.get_running_loop()), events.company_channel(self.company_id))
        hub = _HUBS.get(registry_key)
        if hub is None:
            hub = _HUBS[registry_key] = CompanyHub(self.company_id, _HUBS, registry_key)
        hub.listeners.add(self.listener)
        self.hub = hub
        try:
            await hub.ready()
        except BaseException:
            hub.remove(self.listener)
            raise
        return self.listener

    async def __aexit__(self, *exc: object) -> None:
        if self.hub is not None:
            self.hub.remove(self.listener)


async def close_hubs() -> None:
    """Stop this loop's hubs (app shutdown)."""
    loop_id = id(asyncio.get_running_loop())
    for registry_key in [k for k in _HUBS if k[0] == loop_id]:
        hub = _HUBS.pop(registry_key)
        hub._task.cancel()
        with contextlib.suppress(BaseException):
            await hub._task


async def until_closed() -> None:
    """Wait for the cancellation that closing the connection brings: a subscription whose
    queue overflowed must not look completed to its client."""
    await asyncio.get_running_loop().create_future()


def message_key(event: dict[str, Any]) -> Any:
    """Coalescing key of message status events (other events are never merged)."""
    if event.get("type") == events.MESSAGE_STATUS and event.get("message_id") is not None:
        return ("m", str(event["message_id"]))
    return None


__all__ = ["CLOSE_FELL_BEHIND", "BoundedQueue", "CompanyHub", "Delivery", "Listener", "close_hubs",
           "listen", "message_key"]
