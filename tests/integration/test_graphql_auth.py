"""Authentication, tenancy (another company's ids do not exist) and node(id:)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.ids import parse_id, to_global_id
from core.models import (
    BulkOperation,
    Document,
    EmailTemplate,
    Interview,
    Message,
    RejectionReason,
)
from core.models.enums import BulkOperationKind, TemplateKind
from tests.integration.test_graphql_candidates import (
    CREATE_APPLICATION,
    create_candidate,
    create_position,
)
from tests.integration.test_graphql_messages import send


async def test_no_or_bad_token_is_unauthenticated(api, tenant):
    for headers in ({}, {"Authorization": "Bearer rm_nope"}, {"Authorization": "Basic xyz"}):
        body = await api.post("{ viewer { id } }", headers=headers)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await api.post("""mutation { createPosition(input: {title: "x"}) { errors { code } } }""")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # Introspection stays open (tools need the schema), data does not.
    body = await api.post("{ __typename __schema { queryType { name } } }")
    assert body == {"data": {"__typename": "Query", "__schema": {"queryType": {"name": "Query"}}}}


async def _world(api, tenant):
    """One object of every Node type for the tenant; returns {type name: global id}."""
    cand = await create_candidate(api, tenant)
    pid = await create_position(api, tenant)
    app = (await api.gql(tenant, CREATE_APPLICATION, c=cand["id"], p=pid))["createApplication"]
    msg = (await send(api, tenant, cand["id"]))["message"]
    cid, eid = tenant.company.id, tenant.employee.id
    app_id = parse_id(app["application"]["id"], "Application")
    cand_id = parse_id(cand["id"], "Candidate")
    now = datetime.now(UTC)
    interview = await Interview.create(
        company_id=cid, application_id=app_id, title="Talk", starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1), timezone="Europe/Amsterdam",
        organizer_id=eid, uid=f"uid-{app_id}@test")
    reason = await RejectionReason.create(company_id=cid, label="Filled")
    doc = await Document.create(company_id=cid, candidate_id=cand_id, filename="cv.pdf",
                                content_type="application/pdf", size=10, sha256="0" * 64,
                                blob_key="k" * 32, uploaded_by_id=eid)
    template = await EmailTemplate.create(company_id=cid, name="Hi", kind=TemplateKind.MESSAGE,
                                          subject="Hi", body="Hello")
    bulk = await BulkOperation.create(company_id=cid, kind=BulkOperationKind.EMAIL,
                                      created_by_id=eid, total=1, queued=1)
    await Message.filter(id=parse_id(msg["id"], "Message")).update(bulk_operation_id=bulk.id)
    return {
        "Company": to_global_id("Company", cid), "Employee": to_global_id("Employee", eid),
        "Candidate": cand["id"], "Position": pid, "Application": app["application"]["id"],
        "Message": msg["id"], "Interview": to_global_id("Interview", interview.id),
        "RejectionReason": to_global_id("RejectionReason", reason.id),
        "Document": to_global_id("Document", doc.id),
        "EmailTemplate": to_global_id("EmailTemplate", template.id),
        "BulkOperation": to_global_id("BulkOperation", bulk.id),
    }


NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Interview { details application { id } organizer { name } invitations { id } }
  ... on Document { filename downloadUrl candidate { id } uploadedBy { name } grants { level } }
  ... on BulkOperation { state createdBy { name } messages { totalCount } }
  ... on Message { bulkOperation { id } attachments { id } interview { id } }
  ... on EmailTemplate { kind attachments { id } }
} }"""


async def test_node_resolves_every_type_for_its_company_only(api, tenant, other_tenant):
    ids = await _world(api, tenant)
    for type_name, gid in ids.items():
        node = (await api.gql(tenant, NODE, id=gid))["node"]
        assert node["__typename"] == type_name and node["id"] == gid
        assert (await api.gql(other_tenant, NODE, id=gid))["node"] is None, type_name
    interview = (await api.gql(tenant, NODE, id=ids["Interview"]))["node"]
    # In the candidate's language and zone (created with the defaults en / UTC).
    assert interview["details"].startswith("Talk\nDate: ") and "(UTC)" in interview["details"]
    bulk = (await api.gql(tenant, NODE, id=ids["BulkOperation"]))["node"]
    assert bulk["messages"] == {"totalCount": 1} and bulk["createdBy"] == {"name": "Ada Admin"}
    doc = (await api.gql(tenant, NODE, id=ids["Document"]))["node"]
    assert doc["downloadUrl"] == f"/documents/{ids['Document']}"
    # Malformed ids and ids of a type under another name are simply not there.
    for gid in ("", "garbage", to_global_id("Nope", tenant.company.id)):
        assert (await api.gql(tenant, NODE, id=gid))["node"] is None


async def test_other_company_sees_nothing(api, tenant, other_tenant):
    ids = await _world(api, tenant)
    q = """query($m: ID!, $c: ID!, $b: ID!, $i: ID!) {
      message(id: $m) { id } candidate(id: $c) { id } bulkOperation(id: $b) { id }
      interview(id: $i) { id }
      candidates { totalCount edges { node { id } } }
      messages { totalCount } applications { totalCount } positions { id }
      rejectionReasons { id } emailTemplates { id }
      byCandidate: messages(candidateId: $c) { totalCount }
      byBulk: messages(bulkOperationId: $b) { totalCount } }"""
    args = {"m": ids["Message"], "c": ids["Candidate"], "b": ids["BulkOperation"],
            "i": ids["Interview"]}
    mine = await api.gql(tenant, q, **args)
    assert mine["message"] and mine["candidate"] and mine["bulkOperation"] and mine["interview"]
    assert mine["byCandidate"]["totalCount"] == 1 and mine["byBulk"]["totalCount"] == 1
    theirs = await api.gql(other_tenant, q, **args)
    # Each company has its own starter reasons and templates; none of the other's.
    for field in ("rejectionReasons", "emailTemplates"):
        assert not {r["id"] for r in theirs.pop(field)} & {r["id"] for r in mine[field]}
    assert ids["RejectionReason"] in {r["id"] for r in mine["rejectionReasons"]}
    assert ids["EmailTemplate"] in {r["id"] for r in mine["emailTemplates"]}
    assert theirs == {
        "message": None, "candidate": None, "bulkOperation": None, "interview": None,
        "candidates": {"totalCount": 0, "edges": []}, "messages": {"totalCount": 0},
        "applications": {"totalCount": 0}, "positions": [],
        "byCandidate": {"totalCount": 0}, "byBulk": {"totalCount": 0},
    }
    # Nor can they act on it.
    out = (await api.gql(other_tenant, """mutation($id: ID!) { cancelScheduledMessage(id: $id)
        { message { id } errors { code field } } }""", id=ids["Message"]))[
        "cancelScheduledMessage"]
    assert out == {"message": None, "errors": [{"code": "NOT_FOUND", "field": ["id"]}]}
    out = await send(api, other_tenant, ids["Candidate"])
    assert [(e["code"], e["field"]) for e in out["errors"]] == [
        ("NOT_FOUND", ["input", "candidateId"])]


async def test_restricted_documents_need_a_grant(api, tenant):
    from core.models import DocumentGrant
    from core.services.admin import create_employee

    ids = await _world(api, tenant)
    rob, rob_token = await create_employee(company_id=tenant.company.id, name="Rob",
                                           email="rob@acme.example")
    doc = await Document.get(id=parse_id(ids["Document"], "Document"))
    await Document.filter(id=doc.id).update(restricted=True)
    message = await Message.get(id=parse_id(ids["Message"], "Message"))
    await message.attachments.add(doc)
    q = """query($c: ID!) { candidate(id: $c) { documents { id }
        messages { edges { node { attachments { id filename } } } } } }"""

    def seen(data):
        cand = data["candidate"]
        return ([d["id"] for d in cand["documents"]],
                [a["id"] for e in cand["messages"]["edges"] for a in e["node"]["attachments"]])

    body = await api.post(q, {"c": ids["Candidate"]}, token=rob_token)
    assert seen(body["data"]) == ([], [])
    admin = await api.gql(tenant, q, c=ids["Candidate"])
    assert seen(admin) == ([ids["Document"]], [ids["Document"]])
    await DocumentGrant.create(document_id=doc.id, employee_id=rob.id, level="VIEW")
    body = await api.post(q, {"c": ids["Candidate"]}, token=rob_token)
    assert seen(body["data"]) == ([ids["Document"]], [ids["Document"]])


async def test_health_and_readiness(api):
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await api.client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_readiness_fails_without_redis(api, db, monkeypatch):
    from core.redis import close_redis
    from core.settings import reset_settings

    await close_redis()
    monkeypatch.setenv("RECRUITMAIL_REDIS_URL", "redis://127.0.0.1:9/0")
    reset_settings()
    try:
        r = await api.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": "ok", "redis": "unavailable"}
    finally:
        await close_redis()
        monkeypatch.setenv("RECRUITMAIL_REDIS_URL", db.redis_url)
        reset_settings()


async def test_bugs_are_masked_as_internal_server_error():
    from schema import schema

    class Broken:
        authenticated = True

        @property
        def viewer(self):
            raise RuntimeError("secret detail")

    result = await schema.execute("{ viewer { id } }", context_value=Broken())
    assert result.data is None
    [error] = result.errors
    assert error.message == "Internal server error."
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR"}
