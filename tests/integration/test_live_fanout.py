"""Live subscriptions at scale, over real uvicorn and real Redis: one Redis subscription
per company, rows loaded once per event for every subscriber, and a client that stops
reading is cut off without holding up the others."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from core import events
from core.ids import to_global_id
from core.models import Application, Candidate, Interview, Message, Position
from core.models.enums import MessageKind, MessageStatus
from core.settings import reset_settings
from schema.live import CLOSE_FELL_BEHIND
from tests.support.api import WsClient, redis_subscribers, wait_for_subscribers
from tests.support.statements import count_statements

STATUS = """subscription($c: ID) {
  messageStatusChanged(candidateId: $c) {
    message { id subject candidate { id email } } previousStatus status at } }"""
# The same subscription with another selection: executed apart from the first.
STATUS_BODY = """subscription {
  messageStatusChanged { message { id body } status } }"""

FLOW = [(None, "QUEUED"), ("QUEUED", "SENDING"), ("SENDING", "SENT")]


async def _ws(live_server: Any, tenant: Any, *, compression: bool = True) -> WsClient:
    if compression:
        ws = await WsClient.connect(live_server.ws_url,
                                    {"Authorization": f"Bearer {tenant.token}"})
    else:
        # Without permessage-deflate the server writes one frame made for all of them.
        from websockets.asyncio.client import connect

        ws = WsClient(await connect(live_server.ws_url, compression=None,
                                    subprotocols=["graphql-transport-ws"]))  # type: ignore[list-item]
        await ws.send({"type": "connection_init",
                       "payload": {"Authorization": f"Bearer {tenant.token}"}})
    await ws.ack()
    return ws


async def _message(tenant: Any, *, body: str = "B", n: int = 0) -> tuple[Message, Candidate]:
    cand = await Candidate.create(company=tenant.company, first_name="Nina", last_name="N",
                                  email=f"nina{n}@example.org")
    msg = await Message.create(
        company=tenant.company, candidate=cand, sender=tenant.employee,
        kind=MessageKind.MESSAGE, status=MessageStatus.SENT, from_name="Ada",
        from_address="ada@acme.example", to_addrs=[cand.email], subject=f"S{n}", body=body,
        rfc_message_id=f"m{n}@test")
    return msg, cand


def _event(msg: Message, previous: str | None, status: str) -> tuple[str, dict[str, Any]]:
    return events.MESSAGE_STATUS, {
        "message_id": msg.id, "candidate_id": msg.candidate_id, "bulk_operation_id": None,
        "previous": previous, "status": status, "at": datetime.now(UTC)}


async def test_many_subscribers_share_one_redis_subscription_and_one_row_read(
        live_server, tenant, other_tenant):
    msg, cand = await _message(tenant)
    other_msg, _ = await _message(tenant, n=1)
    cid = to_global_id("Candidate", cand.id)
    channel = events.company_channel(tenant.company.id)
    clients = [await _ws(live_server, tenant, compression=i % 2 == 0) for i in range(12)]
    spy = await _ws(live_server, other_tenant)
    try:
        ops = []
        for i, ws in enumerate(clients):
            if i < 8:
                ops.append(await ws.subscribe(STATUS, {"c": cid}))
            else:
                ops.append(await ws.subscribe(STATUS_BODY))
        await spy.subscribe(STATUS)
        await wait_for_subscribers(channel, 12)
        # Twelve subscriptions, one Redis subscriber for the company.
        assert await redis_subscribers(channel) == 1
        assert await redis_subscribers(events.company_channel(other_tenant.company.id)) == 1

        async with count_statements() as seen:
            # One PUBLISH of three events of one message, one of a message the first eight
            # do not follow.
            await events.publish_many(tenant.company.id, [
                _event(msg, p, s) for p, s in FLOW] + [_event(other_msg, None, "QUEUED")])
            got = [[(await ws.next_data(op))["messageStatusChanged"] for _ in range(3)]
                   for ws, op in zip(clients[:8], ops[:8], strict=True)]
            body = [[(await ws.next_data(op))["messageStatusChanged"] for _ in range(4)]
                    for ws, op in zip(clients[8:], ops[8:], strict=True)]
        for seen_by_one in got:
            assert [(e["previousStatus"], e["status"]) for e in seen_by_one] == FLOW
            assert {e["message"]["id"] for e in seen_by_one} == {to_global_id("Message", msg.id)}
            assert seen_by_one[0]["message"]["candidate"] == {"id": cid,
                                                              "email": "nina0@example.org"}
        for seen_by_one in body:
            assert [e["status"] for e in seen_by_one] == ["QUEUED", "SENDING", "SENT", "QUEUED"]
            assert seen_by_one[0]["message"]["body"] == "B"
        # The rows of that PUBLISH are read once per selection (the columns each shows:
        # the eight that share one, the four that share the other), not once per
        # subscriber and event.
        reads = [s for s in seen.sql if s.startswith("SELECT")]
        assert len(reads) == 2, "\n".join(reads)
        with pytest.raises(TimeoutError):
            await spy.receive(wait=0.3)
    finally:
        for ws in clients:
            await ws.close()
        await spy.close()
    await wait_for_subscribers(channel, 0, wait=3)
    assert await redis_subscribers(channel) == 0


async def _interview(tenant: Any, cand: Candidate) -> Interview:
    position = await Position.create(company=tenant.company, title="Engineer")
    app = await Application.create(company=tenant.company, candidate=cand, position=position)
    now = datetime.now(UTC)
    return await Interview.create(
        company=tenant.company, application=app, title="Talk",
        starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1),
        organizer_id=tenant.employee.id, uid="uid-live@test")


RESPONSES = """subscription { interviewResponseChanged { interview { id } response comment } }"""


async def test_a_client_that_stops_reading_is_cut_off_and_others_get_everything(
        live_server, tenant, monkeypatch):
    monkeypatch.setenv("RECRUITMAIL_WS_QUEUE_SIZE", "300")
    reset_settings()
    msg, cand = await _message(tenant)
    interview = await _interview(tenant, cand)
    channel = events.company_channel(tenant.company.id)
    # Replies carry a long, incompressible comment (permessage-deflate), so a client that
    # does not read fills its socket buffers quickly; replies are never merged.
    reader, stalled, status_reader = [await _ws(live_server, tenant) for _ in range(3)]
    try:
        op = await reader.subscribe(RESPONSES)
        await stalled.subscribe(RESPONSES)
        status_op = await status_reader.subscribe(STATUS_BODY)
        await wait_for_subscribers(channel, 3)
        total = 1000
        statuses = ["SENDING", "SENT"]
        comment = secrets.token_urlsafe(30_000)
        replies: list[str] = []
        changes: list[str] = []

        async def read_replies() -> None:
            while len(replies) < total:
                data = await reader.next_data(op, wait=30)
                replies.append(data["interviewResponseChanged"]["response"])

        async def read_changes() -> None:
            while len(changes) < total:
                data = await status_reader.next_data(status_op, wait=30)
                changes.append(data["messageStatusChanged"]["status"])

        readers = asyncio.gather(read_replies(), read_changes())
        for start in range(0, total, 50):
            batch = []
            for i in range(start, start + 50):
                batch.append(_event(msg, statuses[(i + 1) % 2], statuses[i % 2]))
                batch.append((events.INTERVIEW_RESPONSE, {
                    "interview_id": interview.id, "response": "ACCEPTED", "comment": comment,
                    "at": datetime.now(UTC)}))
            await events.publish_many(tenant.company.id, batch)
            await asyncio.sleep(0.2)  # 250 of each a second, for readers that keep up
        await asyncio.wait_for(readers, 90)
        # Everyone who reads got every event, in order, none merged.
        assert replies == ["ACCEPTED"] * total
        assert changes == [statuses[i % 2] for i in range(total)]
        # The client that stopped reading replies was cut off: with 4420 once it reads
        # again (or dropped, when it could not even take the close frame in time).
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await stalled.receive(wait=15)
        assert closed.value.rcvd is None or closed.value.rcvd.code == CLOSE_FELL_BEHIND
        # The others are still subscribed and still hear new events.
        await events.publish_many(tenant.company.id, [_event(msg, "SENDING", "SENT")])
        assert (await status_reader.next_data(status_op))["messageStatusChanged"][
            "status"] == "SENT"
    finally:
        for ws in (reader, stalled, status_reader):
            await ws.close()
