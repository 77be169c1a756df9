"""Cancelling a bulk operation through GraphQL: a scheduled one sends nothing, a running
or completed one (or another company's) is refused. On the ASGI app, the arq worker and
the aiosmtpd sink; every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.support.bulk_graphql import BULK, _applicants, _in, _send_bulk

CANCEL = """
mutation($id: ID!) {
  cancelBulkOperation(id: $id) {
    bulkOperation { id state total queued sent failed }
    errors { code message field }
  }
}"""


async def test_cancel_scheduled_operation_sends_nothing(api, tenant, sink, run_worker):
    applicants = await _applicants(tenant, 5, first="Later", email="later")
    out = await _send_bulk(api, tenant, applicants, scheduledAt=_in(1.5))
    assert out["errors"] == []
    op = out["bulkOperation"]
    assert op["state"] == "SCHEDULED"

    cancelled = (await api.gql(tenant, CANCEL, id=op["id"]))["cancelBulkOperation"]
    assert cancelled["errors"] == []
    assert cancelled["bulkOperation"]["id"] == op["id"]
    assert (cancelled["bulkOperation"]["state"], cancelled["bulkOperation"]["queued"]) == (
        "CANCELLED", 0)

    await asyncio.sleep(1.6)
    await run_worker()  # runs the (deferred) batch job, which finds nothing to send
    await asyncio.sleep(0.2)
    assert sink.received == []
    data = (await api.gql(tenant, BULK, id=op["id"]))["bulkOperation"]
    assert data["state"] == "CANCELLED" and data["sent"] == 0
    assert {e["node"]["status"] for e in data["messages"]["edges"]} == {"CANCELLED"}
    assert data["messages"]["totalCount"] == 5
    # Cancelling twice: it is no longer scheduled.
    again = (await api.gql(tenant, CANCEL, id=op["id"]))["cancelBulkOperation"]
    assert again["bulkOperation"] is None
    assert [e["code"] for e in again["errors"]] == ["INVALID_STATE"]


async def test_cancel_running_or_completed_operation_is_refused(
    api, tenant, other_tenant, sink, run_worker
):
    applicants = await _applicants(tenant, 5, first="Now", email="now")
    out = await _send_bulk(api, tenant, applicants)
    op = out["bulkOperation"]
    assert op["state"] == "RUNNING"

    running = (await api.gql(tenant, CANCEL, id=op["id"]))["cancelBulkOperation"]
    assert running["bulkOperation"] is None
    assert [(e["code"], e["field"]) for e in running["errors"]] == [("INVALID_STATE", ["id"])]
    assert "RUNNING" in running["errors"][0]["message"]

    # Another company's operation behaves as if it did not exist.
    foreign = (await api.gql(other_tenant, CANCEL, id=op["id"]))["cancelBulkOperation"]
    assert [e["code"] for e in foreign["errors"]] == ["NOT_FOUND"]

    await run_worker()
    await sink.wait_for(5)
    completed = (await api.gql(tenant, CANCEL, id=op["id"]))["cancelBulkOperation"]
    assert completed["bulkOperation"] is None
    assert [(e["code"], e["field"]) for e in completed["errors"]] == [("INVALID_STATE", ["id"])]
    data = (await api.gql(tenant, BULK, id=op["id"]))["bulkOperation"]
    assert (data["state"], data["sent"]) == ("COMPLETED", 5)
    assert {e["node"]["status"] for e in data["messages"]["edges"]} == {"SENT"}

