"""Leases under the worker's heartbeat: a living worker keeps its claims, a dead one's are
taken over, and the SENT write of a worker that lost its claim changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from core.models import Candidate, Message, MessageEvent
from core.models.enums import MessageStatus as S
from core.services import claims, messaging, recording
from core.settings import reset_settings
from worker.sending import Sender


async def _queued(tenant, n: int = 1) -> list[Message]:
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="V", email="nina@example.org")
    return [await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                         subject=f"M{i}", body="Text") for i in range(n)]


async def test_a_living_worker_keeps_its_claims_past_the_lease(tenant, monkeypatch):
    monkeypatch.setenv("RECRUITMAIL_LEASE_SECONDS", "2")
    reset_settings()
    [msg] = await _queued(tenant)
    sender = Sender()
    sender.start()
    try:
        claimed = await sender.claim(msg.id)
        assert claimed is not None and claimed.rfc_message_id == msg.rfc_message_id
        await asyncio.sleep(3.5)  # longer than the lease: the heartbeat renewed it
        await msg.refresh_from_db()
        assert msg.status == S.SENDING and msg.lease_until > recording.now()
        _, other, _ = await claims.claim_many([msg.id])  # another worker
        assert other == []
        assert await sender.record_sent(claimed, "accepted by test") is True
    finally:
        await sender.close()
    await msg.refresh_from_db()
    assert msg.status == S.SENT and msg.attempts == 1 and not sender.held


async def test_a_dead_workers_claim_is_taken_over_and_its_late_write_changes_nothing(tenant):
    [msg] = await _queued(tenant)
    dead = Sender()  # no heartbeat: the process is gone
    claimed = await dead.claim(msg.id)
    assert claimed is not None
    _, before, _ = await claims.claim_many([msg.id])
    assert before == []  # the lease still runs
    await Message.filter(id=msg.id).update(lease_until=recording.now() - timedelta(seconds=1))
    taker = Sender()
    again = await taker.claim(msg.id)
    assert again is not None and again.rfc_message_id == claimed.rfc_message_id
    # The dead worker's SENT (a write that was in flight) is refused: the claim is gone.
    assert await dead.record_sent(claimed, "accepted late") is False
    await msg.refresh_from_db()
    assert msg.status == S.SENDING and msg.attempts == 2
    assert await taker.record_sent(again, "accepted by test") is True
    await msg.refresh_from_db()
    assert msg.status == S.SENT
    events = await MessageEvent.filter(message_id=msg.id).order_by("id").values_list(
        "status", "detail")
    assert [s for s, _ in events] == [S.QUEUED, S.SENDING, S.SENDING, S.SENT]
    assert "lease expired" in (events[2][1] or "")
    await dead.close()
    await taker.close()


async def test_one_process_never_claims_a_message_twice(tenant):
    msgs = await _queued(tenant, 3)
    sender = Sender()
    results = await asyncio.gather(*(sender.claim(m.id) for m in [*msgs, *msgs]))
    assert sum(r is not None for r in results) == 3
    assert sender.held == {m.id for m in msgs}
    await sender.close()


async def test_a_sent_and_the_next_claim_written_together(tenant):
    """A lane's SENT and its next claim in one write: the first message SENT with its
    events, the next SENDING under the same token, another worker's message left alone."""
    first, nxt, foreign = await _queued(tenant, 3)
    sender = Sender()
    claimed = await sender.claim(first.id)
    assert claimed is not None
    _, [other], _ = await claims.claim_many([foreign.id], "another-worker")
    sent_t, got, claim_t = await claims.sent_and_claim(
        sender.token, [(first.id, "250 accepted"), (foreign.id, "250 not mine")], [nxt.id])
    assert [t.message_id for t in sent_t] == [first.id]  # foreign: another token's claim
    assert [m.id for m in got] == [nxt.id] and got[0].rfc_message_id == nxt.rfc_message_id
    assert [(t.previous, t.status) for t in claim_t] == [(S.QUEUED, S.SENDING)]
    for m in (first, nxt, foreign):
        await m.refresh_from_db()
    assert (first.status, nxt.status, foreign.status) == (S.SENT, S.SENDING, S.SENDING)
    assert first.sent_at is not None and nxt.lease_until > recording.now()
    events = await MessageEvent.filter(message_id=first.id).order_by("id").values_list(
        "status", "detail")
    assert events[-1] == (S.SENT, "250 accepted")
    assert await MessageEvent.filter(message_id=nxt.id, status=S.SENDING).count() == 1
    # Through the worker's writer: the SENT of one and the claim of another at once.
    sent, again = await asyncio.gather(sender.record_sent(got[0], "250 ok"),
                                       sender.claim(foreign.id))
    assert sent is True and again is None  # the other worker's lease still runs
    await nxt.refresh_from_db()
    assert nxt.status == S.SENT and other.id == foreign.id
    await sender.close()


class _HeldWrites(Sender):
    """The worker's Sender whose SENT writes wait until the test lets them go: the moment
    a lane's last write is under way, made as long as the test needs."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.go_on = asyncio.Event()

    async def record_sent_and_claim(self, msg, detail, next_id):  # type: ignore[no-untyped-def]
        self.writing.set()
        await self.go_on.wait()
        return await super().record_sent_and_claim(msg, detail, next_id)


async def test_a_message_handed_in_during_a_lanes_last_write_is_sent(tenant, sink):
    """Two jobs for one server: the second hands its message in while the lane is writing
    the SENT of the first job's mail and has already found its queue empty. The lane takes
    it (found in CI: the lane used to end, and the second job waited forever)."""
    from worker.jobs import send_each
    from worker.lanes import Outbox
    from worker.transport import Transport

    first, second = await _queued(tenant, 2)
    sender = _HeldWrites()
    sender.start()
    transport = Transport()
    ctx = {"sender": sender, "transport": transport, "outbox": Outbox(sender, transport)}
    try:
        one = asyncio.create_task(send_each(ctx, [first.id]))
        await asyncio.wait_for(sender.writing.wait(), 10)  # the 250 came, the write waits
        two = asyncio.create_task(send_each(ctx, [second.id]))
        await asyncio.sleep(0.2)  # the second job has handed its message in
        sender.go_on.set()
        done = await asyncio.wait_for(asyncio.gather(one, two), 10)
    finally:
        sender.go_on.set()
        await ctx["outbox"].close()
        await sender.close()
        await transport.close()
    assert [d[m.id][0] for d, m in zip(done, (first, second), strict=True)] == [S.SENT, S.SENT]
    assert sorted(str(r.message["Subject"]) for r in await sink.wait_for(2)) == ["M0", "M1"]
