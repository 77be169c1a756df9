"""Bulk email and bulk rejection through GraphQL, on real parts: the ASGI app (and real
uvicorn for the websocket subscriptions), the arq worker, the aiosmtpd sink, and dumps of
the database after anonymisation. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from core import events
from core.ids import parse_id, to_global_id
from core.models import (
    Application,
    BulkOperation,
    Candidate,
    Message,
    MessageEvent,
    Position,
)
from core.models.enums import MessageStatus
from tests.integration.test_anonymize import _blob_files, _database_views, _found
from tests.support.api import WsClient, wait_for_subscribers

if TYPE_CHECKING:  # a EnvInfo imported for real would be collected as a test class
    from tests.conftest import EnvInfo

S = MessageStatus

SEND_BULK = """
mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) {
    bulkOperation { id kind state total queued sent failed scheduledAt }
    errors { code message field }
  }
}"""
REJECT = """
mutation($input: RejectApplicationsInput!) {
  rejectApplications(input: $input) {
    bulkOperation { id kind state total queued sent failed scheduledAt }
    errors { code message field }
  }
}"""
CANCEL = """
mutation($id: ID!) {
  cancelBulkOperation(id: $id) {
    bulkOperation { id state total queued sent failed }
    errors { code message field }
  }
}"""
BULK = """
query($id: ID!) {
  bulkOperation(id: $id) {
    id kind state total queued sent failed
    messages(first: 200) { totalCount edges { node { id status to } } }
  }
}"""
CREATE_TEMPLATE = """
mutation($input: EmailTemplateInput!) {
  createEmailTemplate(input: $input) { template { id } errors { code field message } } }"""
CREATE_REASON = """
mutation($label: String!) {
  createRejectionReason(label: $label) { rejectionReason { id label } errors { code } } }"""
APPLICATIONS = """
query($after: String, $status: ApplicationStatus) {
  applications(first: 200, after: $after, status: $status) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status rejectedAt rejectionReason { id label } rejectionNote
                   candidate { id firstName lastName fullName email anonymized } } }
  }
}"""
PROGRESS = """
subscription($b: ID!) {
  bulkOperationProgress(id: $b) { id state total queued sent failed } }"""
STATUS = """
subscription($b: ID) {
  messageStatusChanged(bulkOperationId: $b) {
    message { id bulkOperation { id } } previousStatus status } }"""

FINAL_STATES = {"COMPLETED", "COMPLETED_WITH_ERRORS", "CANCELLED"}
REJECTION_BODY = ("Dear {{ candidate.first_name }} {{ candidate.last_name }},\n\n"
                  "we decided not to continue: {{ rejection.reason }}.\n\nKind regards")


# --- set-up ------------------------------------------------------------------------------


@dataclass
class Applicant:
    index: int
    candidate_id: uuid.UUID
    application_id: uuid.UUID
    first: str
    last: str | None
    email: str

    @property
    def app_gid(self) -> str:
        return to_global_id("Application", self.application_id)

    @property
    def cand_gid(self) -> str:
        return to_global_id("Candidate", self.candidate_id)


async def _applicants(tenant: Any, n: int, *, first: str = "Cand", last: str = "Last",
                      email: str = "cand", title: str = "Backend Engineer") -> list[Applicant]:
    """n candidates with one application each, inserted with bulk_create (fast for 1,000)."""
    cid = tenant.company.id
    pos = await Position.create(company_id=cid, title=title)
    cands = [Candidate(id=uuid.uuid4(), company_id=cid, first_name=f"{first}{i}",
                       last_name=f"{last}{i}", email=f"{email}{i}@example.org")
             for i in range(n)]
    await Candidate.bulk_create(cands, batch_size=500)
    apps = [Application(id=uuid.uuid4(), company_id=cid, candidate_id=c.id, position_id=pos.id)
            for c in cands]
    await Application.bulk_create(apps, batch_size=500)
    return [Applicant(i, c.id, a.id, c.first_name or "", c.last_name, c.email or "")
            for i, (c, a) in enumerate(zip(cands, apps, strict=True))]


async def _template(api: Any, tenant: Any, kind: str, body: str,
                    subject: str = "Your application for {{ position.title }}") -> str:
    out = (await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": f"{kind.lower()} template", "kind": kind, "subject": subject, "body": body,
    }))["createEmailTemplate"]
    assert out["errors"] == [], out["errors"]
    tid: str = out["template"]["id"]
    return tid


async def _reason(api: Any, tenant: Any, label: str = "Position filled") -> str:
    out = (await api.gql(tenant, CREATE_REASON, label=label))["createRejectionReason"]
    assert out["errors"] == []
    rid: str = out["rejectionReason"]["id"]
    return rid


async def _send_bulk(api: Any, tenant: Any, applicants: list[Applicant],
                     **fields: Any) -> dict[str, Any]:
    payload = {"applicationIds": [a.app_gid for a in applicants], **fields}
    if "templateId" not in payload:
        payload.setdefault("subject", "News for {{ candidate.first_name }}")
        payload.setdefault("body", "Hello {{ candidate.first_name }}, there is news.")
    out: dict[str, Any] = (await api.gql(tenant, SEND_BULK, input=payload))["sendBulkEmail"]
    return out


async def _reject(api: Any, tenant: Any, applicants: list[Applicant],
                  **fields: Any) -> dict[str, Any]:
    payload = {"applicationIds": [a.app_gid for a in applicants], **fields}
    out: dict[str, Any] = (await api.gql(tenant, REJECT, input=payload))["rejectApplications"]
    return out


async def _all_applications(api: Any, tenant: Any, status: str | None = None
                            ) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await api.gql(tenant, APPLICATIONS, after=after, status=status))["applications"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            assert len(nodes) == page["totalCount"]
            return nodes
        after = page["pageInfo"]["endCursor"]


def _text(received: Any) -> str:
    body: str = received.message.get_body(("plain",)).get_content()
    return body.replace("\r\n", "\n")


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


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


# --- 1. live progress ----------------------------------------------------------------------


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


# --- 2. 500 rejections with email and anonymisation ------------------------------------------


async def test_reject_500_with_email_and_anonymize_leaves_nothing(
    api, tenant, sink, run_worker, db: EnvInfo
):
    n = 500
    applicants = await _applicants(tenant, n, first="Quorra", last="Xyzzyson", email="quorra")
    tpl = await _template(api, tenant, "REJECTION", REJECTION_BODY)
    reason = await _reason(api, tenant, "Position filled")

    out = await _reject(api, tenant, applicants, reasonId=reason, note="Batch closed",
                        anonymize=True, sendEmail=True, templateId=tpl,
                        idempotencyKey="reject-batch-1")
    assert out["errors"] == []
    op = out["bulkOperation"]
    assert (op["kind"], op["state"], op["total"]) == ("REJECTION", "RUNNING", n)
    # Anonymisation waits for each candidate's mail.
    assert await Candidate.filter(company_id=tenant.company.id,
                                  anonymized_at__isnull=False).count() == 0
    # The scanning sees them before: in the dump (and on SQLite the raw file or its WAL).
    needles = ["quorra", "xyzzyson"]  # names, addresses (quorra{i}@) and the mail texts
    before = _database_views(db)
    assert {n for _, n in _found(before, needles)} == set(needles)
    if db.backend == "sqlite":
        raw = {k: v for k, v in before.items() if k.startswith("raw file")}
        assert {n for _, n in _found(raw, needles)} == set(needles)

    await run_worker(timeout=60)
    mails = await sink.wait_for(n, timeout=30)
    assert len(mails) == n
    by_rcpt = {}
    for m in mails:
        [rcpt] = m.rcpt_tos
        by_rcpt[rcpt] = m
    for a in applicants:
        mail = by_rcpt[a.email]
        assert mail.message["Subject"] == "Your application for Backend Engineer"
        text = _text(mail)
        # Each mail has its own candidate's name ("Quorra1 " is not a prefix of "Quorra10 ").
        assert text.startswith(f"Dear {a.first} {a.last},\n"), text
        assert "we decided not to continue: Position filled." in text

    data = (await api.gql(tenant, BULK, id=op["id"]))["bulkOperation"]
    assert (data["state"], data["sent"], data["failed"], data["queued"]) == ("COMPLETED", n, 0, 0)

    nodes = await _all_applications(api, tenant, "REJECTED")
    assert len(nodes) == n
    for node in nodes:
        assert node["status"] == "REJECTED"
        assert node["rejectionReason"] == {"id": reason, "label": "Position filled"}
        assert node["rejectedAt"] and datetime.fromisoformat(node["rejectedAt"]).tzinfo
        assert node["rejectionNote"] is None  # the per-application copy is erased
        cand = node["candidate"]
        assert cand["anonymized"] is True
        assert (cand["firstName"], cand["lastName"], cand["email"]) == (None, None, None)
        assert cand["fullName"] == "Anonymized candidate"
    assert {node["id"] for node in nodes} == {a.app_gid for a in applicants}
    assert await Message.filter(bulk_operation_id__isnull=False, status=S.SENT).count() == n

    assert _found(_blob_files(db), needles) == []
    assert _found(_database_views(db), needles) == []


async def test_sqlite_raw_file_clean_after_chunked_anonymisation(api, tenant, db: EnvInfo):
    """Regression: five rejections with anonymisation of 100 candidates each (fixed ids, so
    the same b-tree history every run). B-tree rebalancing used to leave old copies of
    index cells (addresses) in live pages of the SQLite file, dump clean but file not;
    anonymisation now rebuilds the indexes on SQLite."""
    if db.backend != "sqlite":
        pytest.skip("about the SQLite file; pg_dump shows live rows only")
    cid = tenant.company.id
    rng = random.Random(0)
    pos = await Position.create(company_id=cid, title="Support")
    cands = [Candidate(id=uuid.UUID(int=rng.getrandbits(128), version=4), company_id=cid,
                       first_name=f"Quorra{i}", last_name=f"Xyzzyson{i}",
                       email=f"quorra{i}@example.org") for i in range(500)]
    await Candidate.bulk_create(cands, batch_size=500)
    apps = [Application(id=uuid.UUID(int=rng.getrandbits(128), version=4), company_id=cid,
                        candidate_id=c.id, position_id=pos.id) for c in cands]
    await Application.bulk_create(apps, batch_size=500)
    reason = await _reason(api, tenant)
    for start in range(0, len(apps), 100):
        out = (await api.gql(tenant, REJECT, input={
            "applicationIds": [to_global_id("Application", a.id) for a in apps[start:start + 100]],
            "reasonId": reason, "anonymize": True}))["rejectApplications"]
        assert out["errors"] == []
    assert await Candidate.filter(company_id=cid, anonymized_at__isnull=True).count() == 0
    views = _database_views(db)
    assert _found({"sqlite .dump": views["sqlite .dump"]}, ["quorra", "xyzzyson"]) == []
    assert _found(views, ["quorra", "xyzzyson"]) == []


# --- 3. scheduled rejection: anonymised only after the mail went out -------------------------


async def test_scheduled_rejection_anonymizes_after_sending(api, tenant, sink, run_worker):
    applicants = await _applicants(tenant, 5, first="Zorblax", last="Pendleworth",
                                   email="zorblax")
    tpl = await _template(api, tenant, "REJECTION", REJECTION_BODY)
    reason = await _reason(api, tenant)

    out = await _reject(api, tenant, applicants, reasonId=reason, anonymize=True,
                        sendEmail=True, templateId=tpl, scheduledAt=_in(2))
    assert out["errors"] == []
    op = out["bulkOperation"]
    assert (op["state"], op["total"]) == ("SCHEDULED", 5) and op["scheduledAt"]

    nodes = await _all_applications(api, tenant)
    assert {n["status"] for n in nodes} == {"REJECTED"}
    assert all(n["candidate"]["anonymized"] is False for n in nodes)
    assert sorted(n["candidate"]["firstName"] for n in nodes) == sorted(a.first for a in applicants)
    assert {m.status for m in await Message.filter(company_id=tenant.company.id)} == {S.SCHEDULED}
    assert sink.received == []

    await run_worker()  # burst mode waits for the deferred batch
    mails = await sink.wait_for(5)
    texts = {m.rcpt_tos[0]: _text(m) for m in mails}
    for a in applicants:
        assert texts[a.email].startswith(f"Dear {a.first} {a.last},")

    nodes = await _all_applications(api, tenant)
    assert all(n["candidate"]["anonymized"] is True for n in nodes)
    assert all(n["candidate"]["firstName"] is None for n in nodes)
    msgs = {m.candidate_id: m for m in await Message.filter(company_id=tenant.company.id)}
    for cand in await Candidate.filter(company_id=tenant.company.id):
        msg = msgs[cand.id]
        assert msg.status == S.SENT and msg.sent_at is not None
        assert cand.anonymized_at is not None and cand.anonymized_at >= msg.sent_at
        assert msg.body == "" and msg.to_addrs == []
    data = (await api.gql(tenant, BULK, id=op["id"]))["bulkOperation"]
    assert (data["state"], data["sent"]) == ("COMPLETED", 5)


async def test_rejection_without_email_anonymizes_at_once(api, tenant, sink, run_worker):
    applicants = await _applicants(tenant, 4, first="Zorblax", last="Pendleworth",
                                   email="zorblax")
    reason = await _reason(api, tenant)

    out = await _reject(api, tenant, applicants, reasonId=reason, anonymize=True,
                        note="Zorblax0 was close")
    assert out["errors"] == []
    op = out["bulkOperation"]
    assert (op["kind"], op["total"], op["state"]) == ("REJECTION", 0, "COMPLETED")

    nodes = await _all_applications(api, tenant)
    assert len(nodes) == 4
    for node in nodes:
        assert node["status"] == "REJECTED" and node["rejectedAt"]
        assert node["rejectionReason"]["id"] == reason
        assert node["rejectionNote"] is None
        assert node["candidate"]["anonymized"] is True
        assert node["candidate"]["firstName"] is None and node["candidate"]["email"] is None
    assert await Message.all().count() == 0
    await run_worker()
    assert sink.received == []


# --- 4. one bad recipient among 1,000: named, nothing stored ---------------------------------


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


# --- 5. idempotency --------------------------------------------------------------------------


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


# --- 6. cancelling ---------------------------------------------------------------------------


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
