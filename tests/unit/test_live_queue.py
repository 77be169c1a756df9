"""A subscriber's bounded queue: everything for a reader that keeps up, merged status
changes for one that fell behind, and an overflow (not unbounded memory) when nothing
merges."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from core import events
from schema.live import Delivery, Listener, message_key


def _status(mid: str, previous: str | None, status: str) -> dict[str, Any]:
    return {"type": events.MESSAGE_STATUS, "message_id": mid, "previous": previous,
            "status": status}


def _drain(queue: Listener) -> list[tuple[str, str | None, str]]:
    out = []
    while (item := queue.get_nowait()) is not None:
        event = item[0]
        out.append((event["message_id"], event["previous"], event["status"]))
    return out


def test_a_reader_that_keeps_up_gets_every_change() -> None:
    delivery = Delivery(uuid.uuid4(), [])
    queue = Listener(limit=10, key=message_key)
    flow = [("m1", None, "QUEUED"), ("m1", "QUEUED", "SENDING"), ("m1", "SENDING", "SENT")]
    for mid, previous, status in flow:
        queue.deliver(_status(mid, previous, status), delivery)
    assert _drain(queue) == flow and queue.coalesced == 0


def test_a_reader_behind_gets_changes_of_one_message_merged() -> None:
    delivery = Delivery(uuid.uuid4(), [])
    # Behind from the first pending event (as after BEHIND_SECONDS of not reading).
    queue = Listener(limit=10, behind=1, key=message_key)
    for mid, previous, status in [("m1", None, "QUEUED"), ("m2", None, "QUEUED"),
                                  ("m1", "QUEUED", "SENDING"), ("m1", "SENDING", "SENT"),
                                  ("m2", "QUEUED", "FAILED")]:
        queue.deliver(_status(mid, previous, status), delivery)
    # One change per message, from where the reader was to where the message is now,
    # in the order the messages first changed.
    assert _drain(queue) == [("m1", None, "SENT"), ("m2", None, "FAILED")]
    assert queue.coalesced == 3


def test_a_full_queue_that_cannot_merge_overflows_once() -> None:
    delivery = Delivery(uuid.uuid4(), [])
    calls: list[str] = []
    queue = Listener(limit=3, key=message_key, on_overflow=lambda: calls.append("x"))
    for n in range(3):
        queue.deliver(_status(f"m{n}", None, "QUEUED"), delivery)
    # Full: a change of a pending message still merges...
    queue.deliver(_status("m0", "QUEUED", "SENDING"), delivery)
    assert len(queue) == 3 and not queue.overflowed
    # ...a fourth message does not fit: the queue empties and takes nothing more.
    queue.deliver(_status("m3", None, "QUEUED"), delivery)
    queue.deliver(_status("m4", None, "QUEUED"), delivery)
    assert queue.overflowed and len(queue) == 0 and calls == ["x"]
    assert asyncio.run(queue.get()) is None


def test_only_accepted_events_take_room() -> None:
    delivery = Delivery(uuid.uuid4(), [])
    queue = Listener(limit=2, accept=lambda e: e["message_id"] == "mine", key=message_key)
    for _ in range(100):
        queue.deliver(_status("other", None, "QUEUED"), delivery)
    queue.deliver(_status("mine", None, "QUEUED"), delivery)
    assert _drain(queue) == [("mine", None, "QUEUED")] and not queue.overflowed
