"""Status-change subscriptions made without the executor (schema/live_compiled.py) send the
same bytes as the executor would: the same changes, the same keys in the same order, the
same values, for selections with aliases, fragments, directives, `__typename`, filters and
variables; a selection it cannot make runs through the executor. Real uvicorn, Redis and
the database: two websockets subscribe to the same documents, one while the compiled path
is on and one while it is off, and every `next` frame of theirs is compared as text."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api import live_shared
from core import events
from core.ids import to_global_id
from core.models import Candidate, Message
from core.models.enums import MessageKind, MessageStatus
from core.settings import reset_settings
from tests.support.api import WsClient, wait_for_subscribers

FLOW = [(None, "QUEUED"), ("QUEUED", "SENDING"), ("SENDING", "SENT")]

PLAIN = """subscription { messageStatusChanged {
  message { id status subject candidate { id fullName } } previousStatus status at } }"""
EVERYTHING = """subscription Everything($withBody: Boolean!, $noCc: Boolean!) {
  change: messageStatusChanged {
    __typename at status previousStatus
    m: message {
      __typename id kind direction status fromName fromAddress to cc @skip(if: $noCc) bcc
      subject body @include(if: $withBody) createdAt scheduledAt sentAt attempts error
      expectedSendAt
      ...Who
      ... on Node { nodeId: id }
      candidate { language }
    }
    message { subject }
  }
}
fragment Who on Message {
  candidate { __typename id firstName lastName fullName email language timezone anonymized
              ... on Candidate { again: fullName } }
}"""
LISTS = """subscription($c: ID) { messageStatusChanges(candidateId: $c) {
  status message { id to candidate { fullName } } } }"""
BY_BULK = """subscription { messageStatusChanged(bulkOperationId: "%s") {
  message { subject } status } }"""
BAD_ID = """subscription { messageStatusChanged(candidateId: "not-an-id") { status } }"""
NAMED = """subscription Other { messageStatusChanged { status } }
subscription Mine { messageStatusChanged { previousStatus message { sentAt } } }"""
RESOLVED = """subscription { messageStatusChanged {
  message { id attachments { id } events { status } } status } }"""

# (document, variables, operation name, made without the executor)
DOCUMENTS: list[tuple[str, dict[str, Any], str | None, bool]] = [
    (PLAIN, {}, None, True),
    (EVERYTHING, {"withBody": True, "noCc": False}, "Everything", True),
    (EVERYTHING, {"withBody": False, "noCc": True}, "Everything", True),
    (BAD_ID, {}, None, True),
    (NAMED, {}, "Mine", True),
    (RESOLVED, {}, None, False),
]


async def _ws(live_server: Any, tenant: Any) -> WsClient:
    ws = await WsClient.connect(live_server.ws_url, {"Authorization": f"Bearer {tenant.token}"})
    await ws.ack()
    return ws


async def _frames(ws: WsClient, quiet: float = 1.0) -> dict[str, list[str]]:
    """Every `next` payload received until nothing came for `quiet` seconds, by operation,
    as the text the server wrote (keys in its order)."""
    got: dict[str, list[str]] = {}
    while True:
        try:
            raw = await asyncio.wait_for(ws.conn.recv(), quiet)
        except TimeoutError:
            return got
        message = json.loads(raw)
        if message["type"] == "ping":
            await ws.send({"type": "pong"})
            continue
        assert message["type"] == "next", message
        # The payload as written: the frame is {"id":…,"type":"next","payload":<payload>}.
        payload = raw[raw.index('"payload":') + len('"payload":'):-1]
        assert json.loads(payload) == message["payload"]
        got.setdefault(message["id"], []).append(payload)


@pytest.mark.parametrize("anonymized", [False, True])
async def test_compiled_results_are_the_executors_byte_for_byte(
        live_server, tenant, monkeypatch, anonymized):
    company = tenant.company
    bo = await Candidate.create(company=company, first_name="Bø", last_name="Ström",
                                email="bo@example.org", language="sv",
                                timezone="Europe/Stockholm")
    nameless = await Candidate.create(company=company, email="x@example.org",
                                      anonymized_at=datetime.now(UTC) if anonymized else None)
    now = datetime.now(UTC).replace(microsecond=123456)
    common = {"company": company, "sender": tenant.employee, "kind": MessageKind.MESSAGE,
              "from_name": "Ada", "from_address": "ada@acme.example", "body": "Hej\nså"}
    msgs = [
        await Message.create(**common, candidate=bo, status=MessageStatus.SENT,
                             to_addrs=["bo@example.org"], subject="Ämne 1",
                             rfc_message_id=f"c1-{uuid.uuid4().hex}@t", sent_at=now),
        await Message.create(**common, candidate=nameless, status=MessageStatus.FAILED,
                             to_addrs=["x@example.org"], cc_addrs=["c@example.org"],
                             bcc_addrs=["b@example.org", "d@example.org"], subject="Two",
                             rfc_message_id=f"c2-{uuid.uuid4().hex}@t", attempts=3,
                             error="550 no such user", scheduled_at=now - timedelta(days=1),
                             expected_send_at=now + timedelta(hours=2)),
        await Message.create(**{**common, "kind": MessageKind.BULK}, candidate=bo,
                             status=MessageStatus.QUEUED, to_addrs=["bo@example.org"],
                             subject="Interview", rfc_message_id=f"c3-{uuid.uuid4().hex}@t"),
    ]
    bulk = uuid.uuid4()
    documents = [*DOCUMENTS,
                 (LISTS, {"c": to_global_id("Candidate", bo.id)}, None, True),
                 (LISTS, {"c": None}, None, True),
                 (BY_BULK % to_global_id("BulkOperation", bulk), {}, None, True)]

    async def subscribe(ws: WsClient, suffix: str) -> list[str]:
        ids = []
        for query, variables, name, _ in documents:
            ws._ids += 1
            ids.append(str(ws._ids))
            # A different text (a trailing comment) is a different shared group.
            await ws.send({"id": ids[-1], "type": "subscribe", "payload": {
                "query": query + suffix, "variables": variables, "operationName": name}})
        return ids

    channel = events.company_channel(company.id)
    compiled_ws = await _ws(live_server, tenant)
    executed_ws = await _ws(live_server, tenant)
    try:
        compiled_ids = await subscribe(compiled_ws, "\n# compiled")
        await wait_for_subscribers(channel, len(documents))
        monkeypatch.setenv("RECRUITMAIL_LIVE_COMPILED", "false")
        reset_settings()
        executed_ws._ids = 100  # operation ids of their own
        executed_ids = await subscribe(executed_ws, "\n# executed")
        await wait_for_subscribers(channel, 2 * len(documents))
        # Which operations run without the executor.
        compiled_by_op = {m.operation.id: g.plan is not None
                          for g in live_shared.GROUPS.values() for m in g.members}
        assert [compiled_by_op[i] for i in compiled_ids] == [c for *_, c in documents]
        assert not any(compiled_by_op[i] for i in executed_ids)

        changes = [(events.MESSAGE_STATUS, {
            "message_id": m.id, "candidate_id": m.candidate_id,
            "bulk_operation_id": bulk if i == 1 else None, "previous": p, "status": s,
            "at": now + timedelta(seconds=i)}) for p, s in FLOW for i, m in enumerate(msgs)]
        gone = (events.MESSAGE_STATUS, {"message_id": uuid.uuid4(), "candidate_id": bo.id,
                                        "previous": "QUEUED", "status": "SENDING", "at": now})
        other = (events.INTERVIEW_RESPONSE, {"interview_id": uuid.uuid4()})
        await events.publish_many(company.id, [*changes[:4], gone, other, *changes[4:]])
        # A single change is its own Redis message (not a batch); `at` without a zone.
        await events.publish(company.id, events.MESSAGE_STATUS, message_id=msgs[0].id,
                             candidate_id=bo.id, previous="SENT", status="BOUNCED",
                             at="2026-12-02T10:00:00")

        compiled, executed = await asyncio.gather(_frames(compiled_ws), _frames(executed_ws))
        for (query, _, name, _), cid, eid in zip(documents, compiled_ids, executed_ids,
                                                 strict=True):
            assert compiled.get(cid) == executed.get(eid), (name, query)
        assert len(compiled["1"]) == 10  # every change of the three messages, and the last
        assert "4" not in compiled  # a candidate id that is none matches nothing
        assert len(compiled["6"]) == 10  # attachments and events: executed on both
        assert [len(json.loads(p)["data"]["messageStatusChanges"])
                for p in compiled["7"]] == [6, 1]  # Bø's changes, a Redis message at a time
        assert len(compiled["9"]) == 3  # the second message's changes only
    finally:
        await compiled_ws.close()
        await executed_ws.close()
