"""A burst of status changes (a bulk chunk: one PUBLISH) over real uvicorn and Redis:
shared `messageStatusChanged` subscribers still get every change, one message each, in
order; `messageStatusChanges` gets the same changes as lists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from core import events
from core.ids import to_global_id
from core.models import Candidate, Message
from core.models.enums import MessageKind, MessageStatus
from tests.support.api import WsClient, wait_for_subscribers

ONE = """subscription($b: ID) { changed: messageStatusChanged(bulkOperationId: $b) {
  message { id subject candidate { id fullName } } previousStatus status } }"""
MANY = """subscription($b: ID) { messageStatusChanges(bulkOperationId: $b) {
  message { id } previousStatus status } }"""
FLOW = [(None, "QUEUED"), ("QUEUED", "SENDING"), ("SENDING", "SENT")]


async def _ws(live_server: Any, tenant: Any) -> WsClient:
    ws = await WsClient.connect(live_server.ws_url, {"Authorization": f"Bearer {tenant.token}"})
    await ws.ack()
    return ws


async def _messages(tenant: Any, n: int) -> list[Message]:
    cand = await Candidate.create(company=tenant.company, first_name="Bo", last_name="Burst",
                                  email="bo@example.org")
    return [await Message.create(
        company=tenant.company, candidate=cand, sender=tenant.employee,
        kind=MessageKind.MESSAGE, status=MessageStatus.SENT, from_name="Ada",
        from_address="ada@acme.example", to_addrs=[cand.email], subject=f"S{i}", body="B",
        rfc_message_id=f"burst{i}-{uuid.uuid4().hex}@test") for i in range(n)]


def _changes(msgs: list[Message], bulk_id: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(events.MESSAGE_STATUS, {
        "message_id": m.id, "candidate_id": m.candidate_id, "bulk_operation_id": bulk_id,
        "previous": p, "status": s, "at": datetime.now(UTC)}) for p, s in FLOW for m in msgs]


async def test_a_burst_reaches_every_subscriber_change_by_change(live_server, tenant):
    msgs = await _messages(tenant, 40)
    bulk_id = uuid.uuid4()  # the filter compares ids only
    bid = to_global_id("BulkOperation", bulk_id)
    channel = events.company_channel(tenant.company.id)
    ones = [await _ws(live_server, tenant) for _ in range(3)]
    many = await _ws(live_server, tenant)
    try:
        ops = [await ws.subscribe(ONE, {"b": bid}) for ws in ones]
        many_op = await many.subscribe(MANY, {"b": bid})
        await wait_for_subscribers(channel, 4)
        # Changes of another bulk in the same PUBLISH are not theirs.
        await events.publish_many(tenant.company.id, _changes(msgs, bulk_id)
                                  + _changes(msgs[:5], uuid.uuid4()))
        wanted = [(to_global_id("Message", m.id), p, s) for p, s in FLOW for m in msgs]
        for ws, op in zip(ones, ops, strict=True):
            got = []
            for _ in wanted:
                change = (await ws.next_data(op))["changed"]
                got.append((change["message"]["id"], change["previousStatus"],
                            change["status"]))
                assert change["message"]["candidate"]["fullName"] == "Bo Burst"
            assert got == wanted
        lists: list[list[dict[str, Any]]] = []
        while sum(len(one) for one in lists) < len(wanted):
            lists.append((await many.next_data(many_op))["messageStatusChanges"])
        assert [(c["message"]["id"], c["previousStatus"], c["status"])
                for one in lists for c in one] == wanted
        assert len(lists) < len(wanted)  # batched, not one list per change
    finally:
        for ws in [*ones, many]:
            await ws.close()


async def test_a_bad_selection_is_answered_as_written(live_server, tenant):
    ws = await _ws(live_server, tenant)
    try:
        await ws.subscribe("subscription { messageStatusChanged { nope } }")
        message = await ws.receive()
        assert message["type"] == "error", message
        assert "nope" in message["payload"][0]["message"]
        assert "messageStatusChanges" not in str(message)
    finally:
        await ws.close()
