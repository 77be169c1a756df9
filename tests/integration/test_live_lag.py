"""A subscriber that reads behind, told by its pings (api/ws_direct.py), over real uvicorn and
Redis: its frames wait at the server, where a message's changes merge, while a subscriber
of the same stream that keeps up gets every change."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

from core import events
from tests.integration.test_live_fanout import _event, _message, _ws
from tests.support.api import wait_for_subscribers

FAST = "subscription { messageStatusChanged { message { id } previousStatus status } }"
SLOW = "subscription { messageStatusChanged { status previousStatus message { id } } }"
# A bulk's steps, with a retry: each a change of every message.
ROUNDS = [(None, "QUEUED"), ("QUEUED", "SENDING"), ("SENDING", "QUEUED"), ("QUEUED", "SENDING"),
          ("SENDING", "SENT")]


async def _drain(ws: Any, op: str, quiet: float) -> list[dict[str, Any]]:
    """Every change until none comes for `quiet` seconds."""
    got: list[dict[str, Any]] = []
    while True:
        try:
            got.append((await ws.next_data(op, wait=quiet))["messageStatusChanged"])
        except TimeoutError:
            return got


async def test_a_reader_behind_gets_merged_changes_one_that_keeps_up_every_one(
        live_server: Any, tenant: Any) -> None:
    messages = [(await _message(tenant, n=i))[0] for i in range(80)]
    channel = events.company_channel(tenant.company.id)
    fast = await _ws(live_server, tenant, compression=False)
    slow = await _ws(live_server, tenant, compression=False)
    try:
        fast_op, slow_op = await fast.subscribe(FAST), await slow.subscribe(SLOW)
        await wait_for_subscribers(channel, 2)
        fast_got: list[dict[str, Any]] = []
        for previous, status in ROUNDS:
            # One bulk step: a change of each message in one Redis message. The slow
            # client reads nothing meanwhile (its library stops reading from the socket
            # once 16 messages wait), so a ping behind its frames stays unanswered.
            await events.publish_many(tenant.company.id,
                                      [_event(m, previous, status) for m in messages])
            for _ in messages:
                fast_got.append((await fast.next_data(fast_op))["messageStatusChanged"])
            await asyncio.sleep(0.8)
        slow_got = await _drain(slow, slow_op, 1.5)
    finally:
        await fast.close()
        await slow.close()
    # The reader that keeps up: every change, in order.
    assert [(c["previousStatus"], c["status"]) for c in fast_got] == [
        r for r in ROUNDS for _ in messages]
    # The reader behind: fewer frames, and for each message a chain of changes from
    # nothing to SENT in which each change starts where the one before it ended.
    assert len(slow_got) < len(fast_got)
    by_message: dict[str, list[tuple[str | None, str]]] = {}
    for change in slow_got:
        by_message.setdefault(change["message"]["id"], []).append(
            (change["previousStatus"], change["status"]))
    assert len(by_message) == len(messages)
    for chain in by_message.values():
        assert chain[0][0] is None and chain[-1][1] == "SENT", chain
        assert all(a[1] == b[0] for a, b in pairwise(chain)), chain
