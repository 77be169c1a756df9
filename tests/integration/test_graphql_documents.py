"""Documents through GraphQL: streamed uploads with a 10 MB cap, reuse byte for byte,
restricted documents invisible and unattachable in every path, CSRF for multipart."""

from __future__ import annotations

import os

from core.models import Document, Message
from tests.support.api import bearer, upload

UPLOAD = """mutation($input: UploadDocumentInput!) {
  uploadDocument(input: $input) { document { id filename size downloadUrl restricted }
  errors { code field message } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id attachments { id } } errors { code field message } } }"""
ACCESS = """mutation($input: SetDocumentAccessInput!) {
  setDocumentAccess(input: $input) { document { id restricted grants { level employee { id } } }
  errors { code field message } } }"""
CREATE_CANDIDATE = """mutation { createCandidate(input: {firstName: "Nina", lastName: "V",
  email: "nina@example.org"}) { candidate { id } } }"""


async def _candidate(api, tenant) -> str:
    return (await api.gql(tenant, CREATE_CANDIDATE))["createCandidate"]["candidate"]["id"]


def _blob_files(env) -> list[str]:
    root = env.tmp / "blobs"
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_too_large_is_refused_and_nothing_stored(api, tenant, env):
    cid = await _candidate(api, tenant)
    big = b"x" * (10 * 1024 * 1024 + 1)
    body = await upload(api, UPLOAD, {"input": {"candidateId": cid, "file": None}},
                        {"variables.input.file": ("big.pdf", big, "application/pdf")},
                        token=tenant.token)
    errors = body["data"]["uploadDocument"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == [("TOO_LARGE", ["input", "file"])]
    assert await Document.all().count() == 0
    assert _blob_files(env) == []
    exact = b"y" * (10 * 1024 * 1024)
    body = await upload(api, UPLOAD, {"input": {"candidateId": cid, "file": None}},
                        {"variables.input.file": ("ok.pdf", exact, "application/pdf")},
                        token=tenant.token)
    assert body["data"]["uploadDocument"]["document"]["size"] == 10 * 1024 * 1024


async def test_reused_document_is_attached_byte_for_byte(api, tenant, sink, run_worker):
    cid = await _candidate(api, tenant)
    data = os.urandom(200_000) + b"\x00\r\n\r\n.\r\n"
    body = await upload(api, UPLOAD, {"input": {"candidateId": cid, "file": None}},
                        {"variables.input.file": ("cv.bin", data, "application/octet-stream")},
                        token=tenant.token)
    doc = body["data"]["uploadDocument"]["document"]
    r = await api.client.get(doc["downloadUrl"], headers=bearer(tenant.token))
    assert r.status_code == 200 and r.content == data
    sent = await api.gql(tenant, SEND, input={"candidateId": cid, "subject": "Your CV",
                                              "body": "Attached.", "documentIds": [doc["id"]]})
    assert sent["sendMessage"]["errors"] == []
    # A new upload sent with the message (GraphQL multipart on sendMessage).
    fresh = b"fresh upload \xff\xfe"
    body = await upload(api, SEND, {"input": {"candidateId": cid, "subject": "More",
                                              "body": "x", "attachments": [None]}},
                        {"variables.input.attachments.0": ("notes.txt", fresh, "text/plain")},
                        token=tenant.token)
    assert body["data"]["sendMessage"]["errors"] == []
    assert len(body["data"]["sendMessage"]["message"]["attachments"]) == 1
    await run_worker()
    mails = await sink.wait_for(2)
    payloads = {}
    for mail in mails:
        for part in mail.message.iter_attachments():
            payloads[part.get_filename()] = part.get_payload(decode=True)
    assert payloads["cv.bin"] == data
    assert payloads["notes.txt"] == fresh


async def test_restricted_document_invisible_everywhere(api, tenant, db):
    from core.services.admin import create_employee

    cid = await _candidate(api, tenant)
    body = await upload(api, UPLOAD, {"input": {"candidateId": cid, "file": None}},
                        {"variables.input.file": ("secret.pdf", b"%PDF secret", "application/pdf")},
                        token=tenant.token)
    doc = body["data"]["uploadDocument"]["document"]
    bo, bo_token = await create_employee(company_id=tenant.company.id, name="Bo Berg",
                                         email="bo@acme.example")
    from core.ids import to_global_id

    bo_id = to_global_id("Employee", bo.id)
    res = await api.gql(tenant, ACCESS, input={"documentId": doc["id"], "restricted": True})
    assert res["setDocumentAccess"]["document"]["restricted"] is True

    class Bo:
        token = bo_token

    q_docs = """query($id: ID!) { candidate(id: $id) { documents { id } } }"""
    q_node = """query($id: ID!) { node(id: $id) { id } }"""
    assert (await api.gql(Bo, q_docs, id=cid))["candidate"]["documents"] == []
    assert (await api.gql(Bo, q_node, id=doc["id"]))["node"] is None
    r = await api.client.get(doc["downloadUrl"], headers=bearer(bo_token))
    assert r.status_code == 404
    sent = await api.gql(Bo, SEND, input={"candidateId": cid, "subject": "x", "body": "y",
                                          "documentIds": [doc["id"]]})
    assert [e["code"] for e in sent["sendMessage"]["errors"]] == ["NOT_FOUND"]
    assert sent["sendMessage"]["errors"][0]["field"] == ["input", "documentIds", "0"]
    assert await Message.all().count() == 0
    res = await api.gql(Bo, ACCESS, input={"documentId": doc["id"], "restricted": False})
    assert [e["code"] for e in res["setDocumentAccess"]["errors"]] == ["NOT_FOUND"]

    # A VIEW grant opens every path.
    res = await api.gql(tenant, ACCESS, input={"documentId": doc["id"], "restricted": True,
                                               "grants": [{"employeeId": bo_id, "level": "VIEW"}]})
    assert res["setDocumentAccess"]["errors"] == []
    assert (await api.gql(Bo, q_docs, id=cid))["candidate"]["documents"] == [{"id": doc["id"]}]
    assert (await api.gql(Bo, q_node, id=doc["id"]))["node"] == {"id": doc["id"]}
    r = await api.client.get(doc["downloadUrl"], headers=bearer(bo_token))
    assert r.status_code == 200 and r.content == b"%PDF secret"


async def test_other_company_cannot_download(api, tenant, other_tenant):
    cid = await _candidate(api, tenant)
    body = await upload(api, UPLOAD, {"input": {"candidateId": cid, "file": None}},
                        {"variables.input.file": ("a.txt", b"hello", "text/plain")},
                        token=tenant.token)
    url = body["data"]["uploadDocument"]["document"]["downloadUrl"]
    assert (await api.client.get(url, headers=bearer(other_tenant.token))).status_code == 404
    assert (await api.client.get(url)).status_code == 401


async def test_multipart_without_preflight_header_is_refused(api, tenant):
    import json

    cid = await _candidate(api, tenant)
    r = await api.client.post(
        "/graphql",
        data={"operations": json.dumps({"query": UPLOAD, "variables": {
            "input": {"candidateId": cid, "file": None}}}),
              "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": ("a.txt", b"hello", "text/plain")}, headers=bearer(tenant.token))
    assert r.status_code == 400
    assert await Document.all().count() == 0
