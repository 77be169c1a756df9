"""Subscriptions over real uvicorn and the `websockets` client (graphql-transport-ws)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed

from core import events
from core.ids import parse_id, to_global_id
from core.models import Application, BulkOperation, Interview
from core.models.enums import AttendeeResponse, BulkOperationKind, BulkOperationState
from tests.integration.test_graphql_candidates import create_candidate, create_position
from tests.integration.test_graphql_messages import send
from tests.support.api import WsClient, subscribers, wait_for_subscribers

STATUS = """subscription($c: ID, $b: ID) {
  messageStatusChanged(candidateId: $c, bulkOperationId: $b) {
    message { id status candidate { id } } previousStatus status at } }"""


async def _ws(live_server, tenant) -> WsClient:
    ws = await WsClient.connect(live_server.ws_url, {"Authorization": f"Bearer {tenant.token}"})
    await ws.ack()
    return ws


async def test_message_status_changes_arrive_in_order(api, live_server, tenant, other_tenant,
                                                      sink, run_worker):
    cand = await create_candidate(api, tenant)
    other_cand = await create_candidate(api, tenant, email="other@example.org")
    ws = await _ws(live_server, tenant)
    spy = await _ws(live_server, other_tenant)
    try:
        op = await ws.subscribe(STATUS, {"c": cand["id"]})
        spy_op = await spy.subscribe(STATUS)
        await wait_for_subscribers(events.company_channel(tenant.company.id))
        await wait_for_subscribers(events.company_channel(other_tenant.company.id))
        await send(api, tenant, other_cand["id"])  # filtered out by candidateId
        msg = (await send(api, tenant, cand["id"]))["message"]
        await run_worker()
        await sink.wait_for(2)
        seen = [(await ws.next_data(op))["messageStatusChanged"] for _ in range(3)]
        assert [(s["previousStatus"], s["status"]) for s in seen] == [
            (None, "QUEUED"), ("QUEUED", "SENDING"), ("SENDING", "SENT")]
        assert {s["message"]["id"] for s in seen} == {msg["id"]}
        assert seen[0]["message"]["candidate"] == {"id": cand["id"]}
        assert all(datetime.fromisoformat(s["at"]).tzinfo for s in seen)
        # Another company's subscriber hears nothing of it.
        with pytest.raises(TimeoutError):
            await spy.receive(wait=0.3)
        await ws.send({"id": op, "type": "complete"})
        await spy.send({"id": spy_op, "type": "complete"})
    finally:
        await ws.close()
        await spy.close()


async def test_unauthenticated_connection_is_refused(live_server, tenant):
    for payload in (None, {}, {"Authorization": "Bearer rm_wrong"}):
        ws = await WsClient.connect(live_server.ws_url, payload)
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4403
        await ws.close()
    assert await subscribers(events.company_channel(tenant.company.id)) == 0


async def test_interview_response_and_bulk_progress(api, live_server, tenant):
    cand = await create_candidate(api, tenant)
    pid = await create_position(api, tenant)
    app = await Application.create(company_id=tenant.company.id,
                                   candidate_id=parse_id(cand["id"], "Candidate"),
                                   position_id=parse_id(pid, "Position"))
    now = datetime.now(UTC)
    interview = await Interview.create(
        company_id=tenant.company.id, application=app, title="Talk",
        starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1),
        organizer_id=tenant.employee.id, uid="uid-sub@test")
    bulk = await BulkOperation.create(company_id=tenant.company.id, kind=BulkOperationKind.EMAIL,
                                      created_by_id=tenant.employee.id, total=2, queued=2)
    iid, bid = to_global_id("Interview", interview.id), to_global_id("BulkOperation", bulk.id)
    channel = events.company_channel(tenant.company.id)
    ws = await _ws(live_server, tenant)
    try:
        responses = await ws.subscribe("""subscription($i: ID) {
            interviewResponseChanged(interviewId: $i) { interview { id candidateResponse }
            response comment at } }""", {"i": iid})
        progress = await ws.subscribe("""subscription($b: ID!) {
            bulkOperationProgress(id: $b) { id state queued sent failed } }""", {"b": bid})
        first = (await ws.next_data(progress))["bulkOperationProgress"]
        assert (first["state"], first["queued"], first["sent"]) == ("RUNNING", 2, 0)
        await wait_for_subscribers(channel, 2)

        await Interview.filter(id=interview.id).update(
            candidate_response=AttendeeResponse.ACCEPTED, candidate_comment="See you")
        await events.publish(tenant.company.id, events.INTERVIEW_RESPONSE,
                             interview_id=interview.id, response="ACCEPTED",
                             comment="See you", at=datetime.now(UTC))
        got = (await ws.next_data(responses))["interviewResponseChanged"]
        assert got["interview"] == {"id": iid, "candidateResponse": "ACCEPTED"}
        assert (got["response"], got["comment"]) == ("ACCEPTED", "See you")

        await BulkOperation.filter(id=bulk.id).update(queued=1, sent=1)
        await events.publish(tenant.company.id, events.BULK_PROGRESS, bulk_operation_id=bulk.id)
        step = (await ws.next_data(progress))["bulkOperationProgress"]
        assert (step["queued"], step["sent"]) == (1, 1)
        await BulkOperation.filter(id=bulk.id).update(queued=0, sent=2,
                                                      state=BulkOperationState.COMPLETED)
        await events.publish(tenant.company.id, events.BULK_PROGRESS, bulk_operation_id=bulk.id)
        last = (await ws.next_data(progress))["bulkOperationProgress"]
        assert (last["state"], last["sent"]) == ("COMPLETED", 2)
        done = await ws.receive()
        assert done == {"id": progress, "type": "complete"}
        await ws.send({"id": responses, "type": "complete"})
    finally:
        await ws.close()
    # Closing the socket ends the Redis subscriptions too.
    await wait_for_subscribers(channel, 0, wait=3)
