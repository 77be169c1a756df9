"""The read path: how many statements a Messages page costs, counted at the driver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.ids import to_global_id
from core.models import (
    ApiToken,
    Candidate,
    Document,
    DocumentGrant,
    Message,
    MessageEvent,
)
from core.models.enums import MessageKind, MessageStatus
from core.services.admin import create_employee
from tests.support.statements import count_statements

PAGE = """query($first: Int, $after: String) {
  messages(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id status subject
      candidate { id fullName email }
      attachments { id filename restricted }
      events { status at detail }
    } }
  } }"""


async def _fill(tenant: Any, messages: int) -> dict[str, Any]:
    """`messages` messages over 5 candidates, each with 3 events and 2 attachments; every
    third message's second attachment is restricted (granted to no one)."""
    company = tenant.company
    candidates = [await Candidate.create(company=company, first_name=f"C{i}", last_name="X",
                                         email=f"c{i}@example.org") for i in range(5)]
    start = datetime.now(UTC) - timedelta(hours=1)
    restricted: set[str] = set()
    for i in range(messages):
        cand = candidates[i % 5]
        msg = await Message.create(
            company=company, candidate=cand, sender=tenant.employee, kind=MessageKind.MESSAGE,
            status=MessageStatus.SENT, from_name="Ada", from_address="ada@acme.example",
            to_addrs=[cand.email], subject=f"S{i}", body="B", rfc_message_id=f"m{i}@test")
        await Message.filter(id=msg.id).update(created_at=start + timedelta(seconds=i))
        for n, status in enumerate((MessageStatus.QUEUED, MessageStatus.SENDING,
                                    MessageStatus.SENT)):
            await MessageEvent.create(message=msg, status=status,
                                      at=start + timedelta(seconds=i, milliseconds=n))
        docs = []
        for n in range(2):
            doc = await Document.create(
                company=company, candidate=cand, filename=f"f{i}-{n}.pdf",
                content_type="application/pdf", size=10, sha256="0" * 64,
                blob_key=f"k{i}{n}", restricted=(n == 1 and i % 3 == 0))
            if doc.restricted:
                restricted.add(to_global_id("Document", doc.id))
            docs.append(doc)
        await msg.attachments.add(*docs)
    return {"restricted": restricted}


async def _page(api: Any, token: str, first: int) -> tuple[dict[str, Any], list[str]]:
    async with count_statements() as seen:
        body = await api.post(PAGE, {"first": first}, token=token)
    assert not body.get("errors"), body["errors"]
    return body["data"]["messages"], seen.sql


async def test_a_page_costs_the_same_few_statements_whatever_its_size(api, tenant):
    info = await _fill(tenant, 60)
    rita, recruiter_token = await create_employee(
        company_id=tenant.company.id, name="Rita Recruiter", email="rita@acme.example")

    for token, sees_restricted in ((tenant.token, True), (recruiter_token, False)):
        counts = {}
        for first in (10, 50):
            page, sql = await _page(api, token, first)
            counts[first] = len(sql)
            assert len(sql) <= 6, "\n".join(sql)
            assert not any("pg_advisory_unlock_all" in s or "RESET ALL" in s for s in sql)
            assert page["totalCount"] == 60 and len(page["edges"]) == first
            assert page["pageInfo"]["hasNextPage"]
            subjects = [e["node"]["subject"] for e in page["edges"]]
            assert subjects == [f"S{59 - i}" for i in range(first)]
            for edge in page["edges"]:
                node = edge["node"]
                assert [e["status"] for e in node["events"]] == ["QUEUED", "SENDING", "SENT"]
                assert node["candidate"]["email"].endswith("@example.org")
                ids = {a["id"] for a in node["attachments"]}
                i = int(node["subject"][1:])
                # The admin sees every attachment; a recruiter without a grant does not
                # see the restricted one.
                expected = 1 if (i % 3 == 0 and not sees_restricted) else 2
                assert len(ids) == expected, node
                if not sees_restricted:
                    assert not ids & info["restricted"]
        assert counts[10] == counts[50], counts

    # A grant makes the restricted document visible to that recruiter, same statements.
    doc = await Document.filter(restricted=True).order_by("-created_at").first()
    assert doc is not None
    await DocumentGrant.create(document=doc, employee_id=rita.id, level="VIEW")
    page, sql = await _page(api, recruiter_token, 50)
    assert len(sql) <= 6
    gid = to_global_id("Document", doc.id)
    assert any(gid in {a["id"] for a in e["node"]["attachments"]} for e in page["edges"])


async def test_signing_in_is_one_statement_and_revocation_is_immediate(api, tenant):
    async with count_statements() as seen:
        body = await api.post("{ viewer { name } }", token=tenant.token)
    assert body["data"] == {"viewer": {"name": "Ada Admin"}}, body
    assert len(seen) == 1, seen.sql
    await ApiToken.filter(employee_id=tenant.employee.id).update(revoked=True)
    body = await api.post("{ viewer { name } }", token=tenant.token)
    assert body.get("data") is None or body["data"].get("viewer") is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # Unknown tokens cost one statement too, and say the same.
    async with count_statements() as seen:
        body = await api.post("{ viewer { name } }", token="rm_" + uuid.uuid4().hex)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert len(seen) == 1, seen.sql
