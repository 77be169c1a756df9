"""Bulk email through GraphQL: live progress over websocket subscriptions, a template
error that stores nothing, idempotency keys and an upload carried in every mail. On real
parts: the ASGI app (and real uvicorn for the subscriptions), the arq worker and the
aiosmtpd sink. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from core import events
from core.ids import parse_id, to_global_id
from core.models import BulkOperation, Candidate, Message, MessageEvent
from tests.support.api import WsClient, wait_for_subscribers
from tests.support.bulk_graphql import BULK, SEND_BULK, _applicants, _send_bulk, _template

PROGRESS = """
subscription($b: ID!) {
  bulkOperationProgress(id: $b) { id state total queued sent failed } }"""
STATUS = """
subscription($b: ID) {
  messageStatusChanged(bulkOperationId: $b) {
    message { id bulkOperation { id } } previousStatus status } }"""

FINAL_STATES = {"COMPLETED", "COMPLETED_WITH_ERRORS", "CANCELLED"}


async def _ws(live_server: Any, tenant: Any) -> WsClient:
    ws = await WsClient.connect(live_server.ws_url, {"Authorization": f"Bearer {tenant.token}"})
    await ws.ack()
    return ws


async def _until_complete(ws: WsClient, op_id: str, field: str,
                          wait: float = 10.0) -> list[dict[str, Any]]:
    """Every `next` of one subscription until the server completes it."""
    seen: list[dict[str, Any]] = []
    while True:
        message = await ws.receive(wait)
        if message["type"] == "ping":
            await ws.send({"type": "pong"})
            continue
        assert message.get("id") == op_id, message
        if message["type"] == "complete":
            return seen
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message["payload"]["errors"]
        seen.append(message["payload"]["data"][field])


# --- live progress ----------------------------------------------------------------------


async def test_progress_and_status_subscriptions_follow_one_operation(
    api, live_server, tenant, sink, run_worker
):
    applicants = await _applicants(tenant, 40, first="Prog", email="prog")
    others = await _applicants(tenant, 3, first="Noise", email="noise", title="Other")
    refused = applicants[17]
    sink.handler.refuse_rcpt[refused.email] = "550 5.1.1 no such user"

    out = await _send_bulk(api, tenant, applicants)
    assert out["errors"] == []
    op = out["bulkOperation"]
    assert (op["kind"], op["state"], op["total"], op["queued"]) == ("EMAIL", "RUNNING", 40, 40)
    # Another operation and a single message of the same company, sent by the same worker
    # run: the bulkOperationId filter must leave them out.
    noise = await _send_bulk(api, tenant, others)
    assert noise["errors"] == []
    single = (await api.gql(tenant, """mutation($c: ID!) { sendMessage(input: {candidateId: $c,
        subject: "Single", body: "Text"}) { message { id } errors { code } } }""",
                            c=others[0].cand_gid))["sendMessage"]
    assert single["errors"] == []

    progress_ws = await _ws(live_server, tenant)
    status_ws = await _ws(live_server, tenant)
    try:
        progress = await progress_ws.subscribe(PROGRESS, {"b": op["id"]})
        first = (await progress_ws.next_data(progress))["bulkOperationProgress"]
        assert (first["id"], first["state"], first["total"]) == (op["id"], "RUNNING", 40)
        assert (first["sent"], first["failed"], first["queued"]) == (0, 0, 40)
        statuses = await status_ws.subscribe(STATUS, {"b": op["id"]})
        await wait_for_subscribers(events.company_channel(tenant.company.id), 2)

        await run_worker()
        await sink.wait_for(39 + 3 + 1)

        later = await _until_complete(progress_ws, progress, "bulkOperationProgress")
        seen = [first, *later]
        done = [s["sent"] + s["failed"] for s in seen]
        assert len(seen) >= 2, seen
        assert done == sorted(done), done  # never goes back
        assert done[-1] == 40 and all(s["total"] == 40 for s in seen)
        assert all(s["state"] not in FINAL_STATES for s in seen[:-1]), seen
        last = seen[-1]
        assert (last["state"], last["sent"], last["failed"], last["queued"]) == (
            "COMPLETED_WITH_ERRORS", 39, 1, 0)

        # 40 claims, 39 SENT, 1 FAILED: 80 changes, all of this operation's messages.
        changes = [(await status_ws.next_data(statuses, wait=10))["messageStatusChanged"]
                   for _ in range(80)]
        with pytest.raises(TimeoutError):
            await status_ws.receive(wait=0.5)  # nothing of the other operation or message
        ours = {m.id for m in await Message.filter(
            bulk_operation_id=parse_id(op["id"], "BulkOperation"))}
        assert len(ours) == 40
        assert {c["message"]["bulkOperation"]["id"] for c in changes} == {op["id"]}
        assert {c["message"]["id"] for c in changes} == {to_global_id("Message", m) for m in ours}
        assert Counter((c["previousStatus"], c["status"]) for c in changes) == {
            ("QUEUED", "SENDING"): 40, ("SENDING", "SENT"): 39, ("SENDING", "FAILED"): 1}
        await status_ws.send({"id": statuses, "type": "complete"})
    finally:
        await progress_ws.close()
        await status_ws.close()

    got = Counter(r for m in sink.received for r in m.rcpt_tos)
    assert refused.email not in got
    assert all(got[a.email] == 1 for a in applicants if a is not refused)
    data = (await api.gql(tenant, BULK, id=op["id"]))["bulkOperation"]
    by_status = Counter(e["node"]["status"] for e in data["messages"]["edges"])
    assert by_status == {"SENT": 39, "FAILED": 1}


# --- one bad recipient among 1,000: named, nothing stored ---------------------------------


async def test_one_missing_placeholder_among_1000_stores_nothing(api, tenant, sink):
    applicants = await _applicants(tenant, 1000, first="Many", last="People", email="many")
    bad = applicants[613]
    await Candidate.filter(id=bad.candidate_id).update(last_name=None)
    tpl = await _template(api, tenant, "MESSAGE",
                          "Dear {{ candidate.first_name }} {{ candidate.last_name }}, hello.")

    out = await _send_bulk(api, tenant, applicants, templateId=tpl)

    assert out["bulkOperation"] is None
    assert len(out["errors"]) == 1, out["errors"]
    [err] = out["errors"]
    assert err["code"] == "TEMPLATE_ERROR"
    # The path names the application; the service appends which part of the template
    # failed ("body"), which the message says too.
    assert err["field"][:3] == ["input", "applicationIds", "613"], err
    assert err["field"][3:] in ([], ["body"]), err
    assert bad.app_gid in err["message"]
    assert "candidate.last_name" in err["message"]
    assert await BulkOperation.all().count() == 0
    assert await Message.all().count() == 0
    assert await MessageEvent.all().count() == 0
    assert sink.received == []


# --- idempotency --------------------------------------------------------------------------


async def test_same_idempotency_key_one_operation(api, tenant, sink, run_worker):
    applicants = await _applicants(tenant, 6, first="Idem", email="idem")
    first = await _send_bulk(api, tenant, applicants, idempotencyKey="bulk-key-1")
    second = await _send_bulk(api, tenant, applicants, idempotencyKey="bulk-key-1")
    assert first["errors"] == [] and second["errors"] == []
    assert first["bulkOperation"]["id"] == second["bulkOperation"]["id"]

    # Two at the same moment: one wins, the other gets the winner's operation.
    third, fourth = await asyncio.gather(
        _send_bulk(api, tenant, applicants[:3], idempotencyKey="bulk-key-2"),
        _send_bulk(api, tenant, applicants[:3], idempotencyKey="bulk-key-2"))
    assert third["errors"] == [] and fourth["errors"] == []
    assert third["bulkOperation"]["id"] == fourth["bulkOperation"]["id"]

    await run_worker()
    await sink.wait_for(6 + 3)
    await asyncio.sleep(0.2)
    got = Counter(r for m in sink.received for r in m.rcpt_tos)
    assert got == Counter({**{a.email: 1 for a in applicants[3:]},
                           **{a.email: 2 for a in applicants[:3]}})
    assert await BulkOperation.all().count() == 2
    assert await Message.all().count() == 9
    data = (await api.gql(tenant, BULK, id=first["bulkOperation"]["id"]))["bulkOperation"]
    assert (data["state"], data["sent"], data["messages"]["totalCount"]) == ("COMPLETED", 6, 6)


# --- attachments -----------------------------------------------------------------------


async def test_bulk_email_with_an_upload_carries_it_in_every_mail(api, tenant, sink, run_worker):
    from tests.support.api import upload

    applicants = await _applicants(tenant, 4, first="Att", email="att")
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    body = await upload(api, SEND_BULK, {"input": {
        "applicationIds": [a.app_gid for a in applicants],
        "subject": "Documents for {{ candidate.first_name }}",
        "body": "Hello {{ candidate.first_name }}, see the attachment.", "attachments": [None]}},
        {"variables.input.attachments.0": ("brochure.pdf", pdf, "application/pdf")},
        token=tenant.token)
    out = body["data"]["sendBulkEmail"]
    assert out["errors"] == [], out
    await run_worker()
    await sink.wait_for(4)
    by_rcpt = {m.rcpt_tos[0]: m.message for m in sink.received}
    for a in applicants:
        mail = by_rcpt[a.email]
        assert mail["Subject"] == f"Documents for {a.first}"
        text = mail.get_body(("plain",)).get_content()
        assert text.startswith(f"Hello {a.first}, see the attachment.")
        [att] = list(mail.iter_attachments())
        assert att.get_filename() == "brochure.pdf"
        assert att.get_content() == pdf

    # Each message's attachment is the one document row, shown as sent to that message's
    # candidate; asked for by its own id it belongs to no candidate, and says so.
    data = (await api.gql(tenant, BULK, id=out["bulkOperation"]["id"]))["bulkOperation"]
    doc_ids = set()
    for edge in data["messages"]["edges"]:
        node = (await api.gql(tenant, MESSAGE_ATTACHMENTS, id=edge["node"]["id"]))["node"]
        [doc] = node["attachments"]
        assert doc["filename"] == "brochure.pdf"
        assert doc["candidate"]["id"] == node["candidate"]["id"]
        doc_ids.add(doc["id"])
    assert len(doc_ids) == 1
    body = await api.post(DOCUMENT_CANDIDATE, {"id": doc_ids.pop()}, token=tenant.token)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NO_CANDIDATE"
    assert "belongs to no candidate" in error["message"]


MESSAGE_ATTACHMENTS = """
query($id: ID!) { node(id: $id) { ... on Message {
  candidate { id } attachments { id filename candidate { id } } } } }"""
DOCUMENT_CANDIDATE = """
query($id: ID!) { node(id: $id) { ... on Document { filename candidate { id } } } }"""
