"""The worker's grouped writes (worker/sending.py GroupWriter) and the lease knobs."""

from __future__ import annotations

import asyncio

import pytest

from core.settings import Settings
from worker.sending import GroupWriter


async def test_requests_during_a_write_go_together_in_the_next():
    calls: list[list[int]] = []
    gate = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            await gate.wait()
        return [i * 10 for i in items]

    w: GroupWriter[int, int] = GroupWriter(write, max_items=3, name="t", concurrency=1)
    first = asyncio.create_task(w.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(w.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 0
    assert [await t for t in rest] == [10, 20, 30, 40, 50]
    assert calls == [[0], [1, 2, 3], [4, 5]]  # at most max_items a write, in order


async def test_a_failed_write_fails_each_of_its_requests_and_the_next_write_goes_on():
    async def write(items: list[int]) -> list[int]:
        if 1 in items:
            raise RuntimeError("database gone")
        return items

    w: GroupWriter[int, int] = GroupWriter(write, max_items=1, name="t", concurrency=1)
    bad = asyncio.create_task(w.submit(1))
    good = asyncio.create_task(w.submit(2))
    with pytest.raises(RuntimeError):
        await bad
    assert await good == 2


async def test_a_cancelled_requester_does_not_cancel_the_write():
    written: list[int] = []
    gate = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        await gate.wait()
        written.extend(items)
        return items

    w: GroupWriter[int, int] = GroupWriter(write, max_items=10, name="t")
    t = asyncio.create_task(w.submit(7))
    await asyncio.sleep(0)
    t.cancel()
    gate.set()
    await w.drain()
    assert written == [7]  # a mail the server accepted is recorded even when stopping


def test_lease_renewal_must_be_shorter_than_the_lease(monkeypatch):
    monkeypatch.setenv("RECRUITMAIL_LEASE_SECONDS", "10")
    monkeypatch.setenv("RECRUITMAIL_LEASE_RENEW_SECONDS", "10")
    with pytest.raises(ValueError, match="RECRUITMAIL_LEASE_SECONDS"):
        Settings()
    monkeypatch.setenv("RECRUITMAIL_LEASE_RENEW_SECONDS", "2.5")
    assert Settings().lease_renew_every == 2.5
    monkeypatch.delenv("RECRUITMAIL_LEASE_RENEW_SECONDS")
    assert Settings().lease_renew_every == pytest.approx(10 / 3)


async def test_a_request_made_as_the_last_write_ends_is_written():
    """A request that arrives after the writer found nothing more to do, before its task's
    done callback ran, gets a writer of its own (it used to wait for the next request)."""
    later: list[asyncio.Task[int]] = []

    async def write(items: list[int]) -> list[int]:
        if items == [1]:  # runs right after this write's task ends, before its callbacks
            later.append(asyncio.create_task(w.submit(2)))
        return items

    w: GroupWriter[int, int] = GroupWriter(write, max_items=10, name="t", concurrency=1)
    assert await w.submit(1) == 1
    assert await asyncio.wait_for(later[0], 2) == 2


async def test_an_idle_writer_gathers_the_requests_of_the_next_moment():
    """Requests a moment apart (two connections' 250s) go in one write even when no write
    was running: the idle writer lingers before it writes."""
    calls: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        calls.append(items)
        return items

    w: GroupWriter[int, int] = GroupWriter(write, max_items=10, name="t", linger=0.05)
    first = asyncio.create_task(w.submit(1))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(w.submit(2))
    assert [await first, await second] == [1, 2]
    assert calls == [[1, 2]]
