"""Sending through GraphQL on real parts: the ASGI app, arq worker, aiosmtpd sink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.models import Message
from tests.integration.test_graphql_candidates import create_candidate

SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    message { id status subject body to cc bcc scheduledAt kind direction
              candidate { id } sender { name } fromName fromAddress }
    errors { code message field }
  }
}"""
MESSAGE = """
query($id: ID!) {
  message(id: $id) { id status attempts error sentAt events { status at detail } }
}"""


async def send(api: Any, tenant: Any, candidate_id: str, **fields: Any) -> dict[str, Any]:
    payload = {"candidateId": candidate_id, "subject": "Hello Nina", "body": "Welcome", **fields}
    out: dict[str, Any] = (await api.gql(tenant, SEND, input=payload))["sendMessage"]
    return out


async def test_send_message_reaches_the_sink(api, tenant, sink, run_worker):
    cand = await create_candidate(api, tenant)
    out = await send(api, tenant, cand["id"], cc=["Boss@Acme.example"])
    assert out["errors"] == []
    msg = out["message"]
    assert (msg["status"], msg["kind"], msg["direction"]) == ("QUEUED", "MESSAGE", "OUTBOUND")
    assert msg["to"] == ["nina@example.org"] and msg["cc"] == ["Boss@acme.example"]
    assert msg["candidate"] == {"id": cand["id"]} and msg["sender"] == {"name": "Ada Admin"}
    await run_worker()
    [mail] = await sink.wait_for(1)
    assert mail.message["Subject"] == "Hello Nina"
    data = (await api.gql(tenant, MESSAGE, id=msg["id"]))["message"]
    assert data["status"] == "SENT" and data["attempts"] == 1 and data["sentAt"]
    assert [e["status"] for e in data["events"]] == ["QUEUED", "SENDING", "SENT"]
    listing = await api.gql(tenant, """query($c: ID!) { candidate(id: $c) { messages {
        totalCount edges { node { id status } } } } }""", c=cand["id"])
    assert listing["candidate"]["messages"] == {
        "totalCount": 1, "edges": [{"node": {"id": msg["id"], "status": "SENT"}}]}


async def test_invalid_input_comes_back_as_data_and_writes_nothing(api, tenant):
    cand = await create_candidate(api, tenant)
    out = await send(api, tenant, cand["id"], cc=["ok@example.org", "not an address"])
    assert out["message"] is None
    assert out["errors"] == [{"code": "INVALID_EMAIL", "field": ["input", "cc", "1"],
                              "message": "'not an address' is not a valid email address."}]
    out = await send(api, tenant, cand["id"], subject="Hi\r\nBcc: evil@example.org")
    assert [(e["code"], e["field"]) for e in out["errors"]] == [
        ("INVALID_INPUT", ["input", "subject"])]
    out = await send(api, tenant, "bm90LWFuLWlk")
    assert [(e["code"], e["field"]) for e in out["errors"]] == [
        ("NOT_FOUND", ["input", "candidateId"])]
    out = await send(api, tenant, cand["id"], templateId="x", documentIds=["y"])
    assert [(e["code"], e["field"]) for e in out["errors"]] == [
        ("NOT_FOUND", ["input", "templateId"]), ("NOT_FOUND", ["input", "documentIds", "0"])]
    assert await Message.all().count() == 0


async def test_idempotency_key_sends_once(api, tenant, sink, run_worker):
    cand = await create_candidate(api, tenant)
    first = await send(api, tenant, cand["id"], idempotencyKey="k-1")
    second = await send(api, tenant, cand["id"], idempotencyKey="k-1")
    assert first["message"]["id"] == second["message"]["id"]
    await run_worker()
    await sink.wait_for(1)
    assert len(sink.received) == 1
    assert await Message.all().count() == 1


async def test_schedule_and_cancel(api, tenant):
    cand = await create_candidate(api, tenant)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    out = await send(api, tenant, cand["id"], scheduledAt=later)
    msg = out["message"]
    assert msg["status"] == "SCHEDULED" and msg["scheduledAt"]
    cancel = """mutation($id: ID!) { cancelScheduledMessage(id: $id) {
        message { id status } errors { code field } } }"""
    out = (await api.gql(tenant, cancel, id=msg["id"]))["cancelScheduledMessage"]
    assert out == {"message": {"id": msg["id"], "status": "CANCELLED"}, "errors": []}
    again = (await api.gql(tenant, cancel, id=msg["id"]))["cancelScheduledMessage"]
    assert again["message"] is None
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("INVALID_STATE", ["id"])]
    data = (await api.gql(tenant, MESSAGE, id=msg["id"]))["message"]
    assert [e["status"] for e in data["events"]] == ["SCHEDULED", "CANCELLED"]


async def test_retry_after_permanent_failure(api, tenant, sink, run_worker):
    cand = await create_candidate(api, tenant)
    sink.handler.refuse_rcpt["nina@example.org"] = "550 5.1.1 <nina@example.org>: no mailbox"
    msg = (await send(api, tenant, cand["id"]))["message"]
    await run_worker()
    data = (await api.gql(tenant, MESSAGE, id=msg["id"]))["message"]
    assert data["status"] == "FAILED" and "550 5.1.1" in data["error"]
    retry = """mutation($id: ID!) { retryMessage(id: $id) { message { status }
        errors { code field } } }"""
    sink.handler.refuse_rcpt.clear()
    out = (await api.gql(tenant, retry, id=msg["id"]))["retryMessage"]
    assert out == {"message": {"status": "QUEUED"}, "errors": []}
    await run_worker()
    await sink.wait_for(1)
    data = (await api.gql(tenant, MESSAGE, id=msg["id"]))["message"]
    assert [e["status"] for e in data["events"]] == [
        "QUEUED", "SENDING", "FAILED", "QUEUED", "SENDING", "SENT"]
    out = (await api.gql(tenant, retry, id=msg["id"]))["retryMessage"]
    assert [(e["code"], e["field"]) for e in out["errors"]] == [("INVALID_STATE", ["id"])]
    out = (await api.gql(tenant, retry, id="junk"))["retryMessage"]
    assert [(e["code"], e["field"]) for e in out["errors"]] == [("NOT_FOUND", ["id"])]


async def test_pagination_newest_first_and_stable(api, tenant):
    cand = await create_candidate(api, tenant)
    ids = [(await send(api, tenant, cand["id"], subject=f"S{i}"))["message"]["id"]
           for i in range(5)]
    page = """query($first: Int, $after: String, $c: ID) {
      messages(first: $first, after: $after, candidateId: $c) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }"""
    p1 = (await api.gql(tenant, page, first=2, c=cand["id"]))["messages"]
    assert p1["totalCount"] == 5 and p1["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in p1["edges"]] == ids[::-1][:2]
    assert p1["pageInfo"]["endCursor"] == p1["edges"][-1]["cursor"]
    # A message added meanwhile does not shift the next page.
    await send(api, tenant, cand["id"], subject="late")
    p2 = (await api.gql(tenant, page, first=2, after=p1["pageInfo"]["endCursor"]))["messages"]
    assert [e["node"]["id"] for e in p2["edges"]] == ids[::-1][2:4]
    p3 = (await api.gql(tenant, page, first=2, after=p2["pageInfo"]["endCursor"]))["messages"]
    assert [e["node"]["id"] for e in p3["edges"]] == ids[:1]
    assert p3["pageInfo"]["hasNextPage"] is False and p3["totalCount"] == 6
    by_status = (await api.gql(tenant, """{ messages(status: SENT) { totalCount } }"""))
    assert by_status["messages"]["totalCount"] == 0
    for bad in ({"first": 0}, {"first": 201}, {"after": "!!not-a-cursor"}):
        body = await api.post(page, bad, token=tenant.token)
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_candidates_connection_and_search(api, tenant):
    for i, name in enumerate(["Nina", "Noor", "Bram"]):
        await create_candidate(api, tenant, firstName=name, email=f"c{i}@example.org")
    query = """query($first: Int, $after: String, $s: String) {
      candidates(first: $first, after: $after, search: $s) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { firstName } } } }"""
    p1 = (await api.gql(tenant, query, first=2))["candidates"]
    assert [e["node"]["firstName"] for e in p1["edges"]] == ["Bram", "Noor"]
    assert p1["totalCount"] == 3 and p1["pageInfo"]["hasNextPage"]
    p2 = (await api.gql(tenant, query, first=2, after=p1["pageInfo"]["endCursor"]))["candidates"]
    assert [e["node"]["firstName"] for e in p2["edges"]] == ["Nina"]
    assert not p2["pageInfo"]["hasNextPage"]
    found = (await api.gql(tenant, query, s="no"))["candidates"]
    assert [e["node"]["firstName"] for e in found["edges"]] == ["Noor"]
