"""A bounded FIFO that never blocks its producer (schema/live.py's listeners, the
websocket layer's per-connection queues)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
# A reader whose oldest pending event waited this long has fallen behind: from then on,
# changes of one message are merged for it.
BEHIND_SECONDS = 0.5


def _replace(old: T, new: T) -> T:
    return new


class BoundedQueue(Generic[T]):
    """A bounded FIFO that never blocks its producer.

    Once its reader has fallen behind (the oldest pending item waited `behind_seconds`,
    `behind` items are pending, or the queue is full), an item whose key is already
    pending replaces (through `merge(old, new)`) the newest pending item of that key
    instead of queueing. When it is full and nothing merges, it overflows: it empties,
    takes nothing more and calls `on_overflow`.
    """

    def __init__(self, *, limit: int, behind: int | None = None,
                 behind_seconds: float = BEHIND_SECONDS,
                 merge: Callable[[T, T], T] = _replace,
                 on_overflow: Callable[[], None] | None = None) -> None:
        self.limit = max(1, limit)
        self.behind = self.limit if behind is None else behind
        self.behind_seconds = behind_seconds
        self.merge = merge
        self.on_overflow = on_overflow
        self.overflowed = False
        self.closed = False
        self.coalesced = 0
        # slot -> (coalescing key, item, when queued); _last: key -> its newest pending slot.
        self._queue: OrderedDict[int, tuple[Any, T, float]] = OrderedDict()
        self._last: dict[Any, int] = {}
        self._seq = 0
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def falling_behind(self) -> bool:
        if len(self._queue) >= self.behind:
            return True
        for _, _, queued_at in self._queue.values():  # the oldest only
            return time.monotonic() - queued_at >= self.behind_seconds
        return False

    def offer(self, item: T, key: Any = None) -> bool:
        """Queue an item; False when the queue overflowed (now or before) or is closed."""
        if self.overflowed or self.closed:
            return False
        if key is not None:
            slot = self._last.get(key)
            if slot is not None and self.falling_behind():
                _, old, queued_at = self._queue[slot]
                self._queue[slot] = (key, self.merge(old, item), queued_at)
                self.coalesced += 1
                self._wake()
                return True
        if len(self._queue) >= self.limit:
            self.overflowed = True
            self._queue.clear()
            self._last.clear()
            self._wake()
            if self.on_overflow is not None:
                self.on_overflow()
            return False
        self._seq += 1
        self._queue[self._seq] = (key, item, time.monotonic())
        if key is not None:
            self._last[key] = self._seq
        self._wake()
        return True

    def close(self) -> None:
        """No more items: `get` returns what is pending, then None."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def peek(self) -> T | None:
        """The oldest pending item, left in the queue."""
        for _, item, _ in self._queue.values():
            return item
        return None

    def get_nowait(self) -> T | None:
        if not self._queue:
            return None
        slot, (key, item, _) = self._queue.popitem(last=False)
        if key is not None and self._last.get(key) == slot:
            del self._last[key]
        return item

    async def get(self, wait: float | None = None) -> T | None:
        """The oldest pending item; None after `wait` seconds without one, or once the
        queue overflowed or was closed and is empty."""
        while not self._queue:
            if self.overflowed or self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                if wait is None:
                    await self._waiter
                else:
                    try:
                        await asyncio.wait_for(asyncio.shield(self._waiter), wait)
                    except TimeoutError:
                        return None
            finally:
                self._waiter = None
        return self.get_nowait()
