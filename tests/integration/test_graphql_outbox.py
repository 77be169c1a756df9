"""What the /outbox page reads besides messages: messageCounts, bulkOperations and
interviewResponses, on the real ASGI app, worker and SMTP sink; and the page's route.
Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.ids import to_global_id
from core.models import Application, Interview
from core.models.enums import AttendeeResponse
from tests.support.bulk_graphql import _applicants, _send_bulk

COUNTS = """
query($direction: MessageDirection) { messageCounts(direction: $direction) { status count } }"""
BULKS = """
query($first: Int, $after: String, $state: BulkOperationState) {
  bulkOperations(first: $first, after: $after, state: $state) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id kind state total sent failed createdBy { name } } }
  }
}"""
ANSWERS = """
query($first: Int) {
  interviewResponses(first: $first) {
    response comment at interview { id title candidateResponse } }
}"""
ALL_STATUSES = ["SCHEDULED", "QUEUED", "SENDING", "SENT", "FAILED", "CANCELLED", "BOUNCED",
                "RECEIVED"]


def _counts(data: dict[str, Any]) -> dict[str, int]:
    rows = data["messageCounts"]
    assert [r["status"] for r in rows] == ALL_STATUSES
    return {r["status"]: r["count"] for r in rows}


def _later(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def test_message_counts_by_status(api: Any, tenant: Any, other_tenant: Any, sink: Any,
                                        run_worker: Any) -> None:
    empty = _counts(await api.gql(tenant, COUNTS))
    assert set(empty.values()) == {0}

    people = await _applicants(tenant, 4)
    await _send_bulk(api, tenant, people[:3])
    sink.handler.refuse_rcpt[people[0].email.lower()] = "550 5.1.1 No such user here"
    await run_worker()
    # Scheduled after the worker ran: its deferred job would keep a burst worker waiting.
    await _send_bulk(api, tenant, people[3:], scheduledAt=_later(2))
    await _applicants(other_tenant, 2, email="other")

    counts = _counts(await api.gql(tenant, COUNTS))
    assert counts["SENT"] == 2 and counts["FAILED"] == 1 and counts["SCHEDULED"] == 1
    assert sum(counts.values()) == 4
    assert _counts(await api.gql(tenant, COUNTS, direction="OUTBOUND")) == counts
    assert set(_counts(await api.gql(tenant, COUNTS, direction="INBOUND")).values()) == {0}
    # Another company's token sees its own (empty) outbox.
    assert set(_counts(await api.gql(other_tenant, COUNTS)).values()) == {0}


async def test_message_counts_need_a_token(api: Any, tenant: Any) -> None:
    body = await api.post(COUNTS, token="rm_not-a-token")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bulk_operations_newest_first_by_state_and_paged(
        api: Any, tenant: Any, other_tenant: Any) -> None:
    people = await _applicants(tenant, 5)
    made = []
    for i, person in enumerate(people):
        extra = {"scheduledAt": _later(3)} if i % 2 else {}
        out = await _send_bulk(api, tenant, [person], **extra)
        assert out["errors"] == []
        made.append(out["bulkOperation"]["id"])
    theirs = await _applicants(other_tenant, 1, email="globex")
    assert (await _send_bulk(api, other_tenant, theirs))["errors"] == []

    page = (await api.gql(tenant, BULKS, first=2))["bulkOperations"]
    assert page["totalCount"] == 5 and page["pageInfo"]["hasNextPage"] is True
    seen = [e["node"]["id"] for e in page["edges"]]
    while page["pageInfo"]["hasNextPage"]:
        page = (await api.gql(tenant, BULKS, first=2,
                              after=page["pageInfo"]["endCursor"]))["bulkOperations"]
        seen += [e["node"]["id"] for e in page["edges"]]
    assert seen == list(reversed(made))
    first = (await api.gql(tenant, BULKS))["bulkOperations"]["edges"][0]["node"]
    assert first["kind"] == "EMAIL" and first["total"] == 1
    assert first["createdBy"] == {"name": "Ada Admin"}

    scheduled = (await api.gql(tenant, BULKS, state="SCHEDULED"))["bulkOperations"]
    assert [e["node"]["id"] for e in scheduled["edges"]] == [made[3], made[1]]
    assert {e["node"]["state"] for e in scheduled["edges"]} == {"SCHEDULED"}
    assert scheduled["totalCount"] == 2
    assert (await api.gql(tenant, BULKS, state="CANCELLED"))["bulkOperations"]["edges"] == []

    other = (await api.gql(other_tenant, BULKS))["bulkOperations"]
    assert other["totalCount"] == 1 and other["edges"][0]["node"]["id"] not in made


async def test_bulk_operations_refuse_a_bad_page(api: Any, tenant: Any) -> None:
    for variables in ({"first": 0}, {"first": 201}, {"after": "not a cursor"}):
        body = await api.post(BULKS, variables, token=tenant.token)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body


async def _interview(tenant: Any, title: str, **answer: Any) -> Interview:
    cid = tenant.company.id
    people = await _applicants(tenant, 1, email=f"iv{uuid.uuid4().hex[:6]}")
    app = await Application.get(id=people[0].application_id)
    start = datetime.now(UTC) + timedelta(days=2)
    return await Interview.create(
        company_id=cid, application_id=app.id, title=title, starts_at=start,
        ends_at=start + timedelta(hours=1), organizer_id=tenant.employee.id,
        uid=f"{uuid.uuid4()}@test", **answer)


async def test_interview_responses_newest_first(api: Any, tenant: Any,
                                                other_tenant: Any) -> None:
    now = datetime.now(UTC)
    await _interview(tenant, "Not answered")
    early = await _interview(tenant, "Early", candidate_response=AttendeeResponse.DECLINED,
                             candidate_responded_at=now - timedelta(hours=2),
                             candidate_comment="I took another offer")
    late = await _interview(tenant, "Late", candidate_response=AttendeeResponse.ACCEPTED,
                            candidate_responded_at=now - timedelta(minutes=5))
    await _interview(other_tenant, "Theirs", candidate_response=AttendeeResponse.ACCEPTED,
                     candidate_responded_at=now)

    rows = (await api.gql(tenant, ANSWERS))["interviewResponses"]
    assert [r["interview"]["id"] for r in rows] == [
        to_global_id("Interview", late.id), to_global_id("Interview", early.id)]
    assert rows[0]["response"] == "ACCEPTED" and rows[0]["comment"] is None
    assert rows[1] == {
        "response": "DECLINED", "comment": "I took another offer",
        "at": rows[1]["at"],
        "interview": {"id": to_global_id("Interview", early.id), "title": "Early",
                      "candidateResponse": "DECLINED"},
    }
    answered = datetime.fromisoformat(rows[1]["at"])
    assert answered.tzinfo is not None
    assert abs(answered - (now - timedelta(hours=2))) < timedelta(seconds=1)
    assert len((await api.gql(tenant, ANSWERS, first=1))["interviewResponses"]) == 1
    body = await api.post(ANSWERS, {"first": 0}, token=tenant.token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_outbox_page_is_served_offline(api: Any) -> None:
    page = await api.client.get("/outbox")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "http://" not in page.text and "https://" not in page.text
    assert "<script>" not in page.text  # no inline script
    for asset in ("outbox.js", "outbox.css"):
        assert f"/static/outbox/{asset}?v=" in page.text
        r = await api.client.get(f"/static/outbox/{asset}")
        assert r.status_code == 200 and len(r.content) > 1000
        assert "http://" not in r.text and "https://" not in r.text


RETRY = """
mutation($id: ID!) {
  retryMessage(id: $id) { message { id status error } errors { code message field } } }"""
BULK = "query($id: ID!) { bulkOperation(id: $id) { state total queued sent failed } }"


async def test_retry_a_bounced_message(api: Any, tenant: Any, sink: Any,
                                       run_worker: Any) -> None:
    """The outbox offers Retry for BOUNCED as for FAILED: a new attempt to the same address."""
    from core.models import Message
    from core.services import delivery

    people = await _applicants(tenant, 2)
    bulk = (await _send_bulk(api, tenant, people))["bulkOperation"]
    await run_worker()
    await sink.wait_for(2)
    rows = await Message.filter(company_id=tenant.company.id).order_by("created_at", "id")
    bounced = rows[0]
    mid = to_global_id("Message", bounced.id)
    # What the inbound gateway does with a delivery status notification.
    assert await delivery.mark_bounced(bounced.id, reason="550 5.2.2 mailbox full") is not None
    assert (await api.gql(tenant, BULK, id=bulk["id"]))["bulkOperation"]["failed"] == 1
    assert _counts(await api.gql(tenant, COUNTS))["BOUNCED"] == 1

    out = (await api.gql(tenant, RETRY, id=mid))["retryMessage"]
    assert out["errors"] == [] and out["message"]["status"] == "QUEUED"
    await run_worker()
    await sink.wait_for(3)
    assert sink.received[2].rcpt_tos == list(bounced.to_addrs)
    after = (await api.gql(tenant, BULK, id=bulk["id"]))["bulkOperation"]
    assert (after["sent"], after["failed"], after["queued"]) == (2, 0, 0)
    counts = _counts(await api.gql(tenant, COUNTS))
    assert (counts["SENT"], counts["BOUNCED"]) == (2, 0)

    # A sent message is not retried; nothing changes.
    again = (await api.gql(tenant, RETRY, id=mid))["retryMessage"]
    assert again["message"] is None
    assert again["errors"][0]["code"] == "INVALID_STATE"
    assert "failed or bounced" in again["errors"][0]["message"]
    assert len(sink.received) == 3
