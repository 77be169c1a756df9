"""Candidates, positions, applications and company settings through GraphQL."""

from __future__ import annotations

from typing import Any

from core.models import Candidate, Company, Position
from core.security import decrypt_secret

CREATE_CANDIDATE = """
mutation($input: CreateCandidateInput!) {
  createCandidate(input: $input) {
    candidate { id firstName lastName fullName email language timezone anonymized }
    errors { code message field }
  }
}"""
CREATE_POSITION = """
mutation($title: String!) {
  createPosition(input: {title: $title}) { position { id title } errors { code field } }
}"""
CREATE_APPLICATION = """
mutation($c: ID!, $p: ID!) {
  createApplication(input: {candidateId: $c, positionId: $p}) {
    application { id status candidate { id fullName } position { id title } interviews { id } }
    errors { code message field }
  }
}"""


async def create_candidate(api: Any, tenant: Any, **fields: Any) -> dict[str, Any]:
    data = {"firstName": "Nina", "lastName": "de Vries", "email": "nina@example.org", **fields}
    out = (await api.gql(tenant, CREATE_CANDIDATE, input=data))["createCandidate"]
    assert out["errors"] == [], out["errors"]
    candidate: dict[str, Any] = out["candidate"]
    return candidate


async def create_position(api: Any, tenant: Any, title: str = "Backend Engineer") -> str:
    out = (await api.gql(tenant, CREATE_POSITION, title=title))["createPosition"]
    assert out["errors"] == []
    pid: str = out["position"]["id"]
    return pid


async def test_create_candidate_position_application(api, tenant):
    cand = await create_candidate(api, tenant, language="nl", timezone="Europe/Amsterdam",
                                  email="Nina@Example.ORG")
    assert cand["fullName"] == "Nina de Vries"
    assert cand["email"] == "Nina@example.org"
    assert (cand["language"], cand["timezone"], cand["anonymized"]) == (
        "nl", "Europe/Amsterdam", False)
    pid = await create_position(api, tenant)
    out = (await api.gql(tenant, CREATE_APPLICATION, c=cand["id"], p=pid))["createApplication"]
    assert out["errors"] == []
    app = out["application"]
    assert app["status"] == "ACTIVE" and app["interviews"] == []
    assert app["candidate"] == {"id": cand["id"], "fullName": "Nina de Vries"}
    assert app["position"] == {"id": pid, "title": "Backend Engineer"}

    data = await api.gql(tenant, """query($id: ID!) { candidate(id: $id) {
        applications { id position { title } } messages { totalCount } documents { id } } }""",
                         id=cand["id"])
    assert data["candidate"] == {"applications": [{"id": app["id"],
                                                   "position": {"title": "Backend Engineer"}}],
                                 "messages": {"totalCount": 0}, "documents": []}
    again = (await api.gql(tenant, CREATE_APPLICATION, c=cand["id"], p=pid))["createApplication"]
    assert again["application"] is None
    assert again["errors"][0]["code"] == "INVALID_STATE"


async def test_create_candidate_defaults_and_canonical_language(api, tenant):
    cand = await create_candidate(api, tenant)
    assert (cand["language"], cand["timezone"]) == ("en", "UTC")
    cand = await create_candidate(api, tenant, language="pt_br", email="p@example.org")
    assert cand["language"] == "pt-BR"


async def test_create_candidate_errors_write_nothing(api, tenant):
    out = (await api.gql(tenant, CREATE_CANDIDATE, input={
        "firstName": " ", "lastName": "X", "email": "not an email",
        "language": "xx-notalanguage", "timezone": "Mars/Olympus"}))["createCandidate"]
    assert out["candidate"] is None
    got = {(e["code"], tuple(e["field"])) for e in out["errors"]}
    assert got == {
        ("INVALID_INPUT", ("input", "firstName")),
        ("INVALID_EMAIL", ("input", "email")),
        ("INVALID_INPUT", ("input", "language")),
        ("INVALID_INPUT", ("input", "timezone")),
    }
    assert await Candidate.all().count() == 0


async def test_create_application_with_foreign_or_bad_ids(api, tenant, other_tenant):
    foreign = await create_candidate(api, other_tenant)
    pid = await create_position(api, tenant)
    out = (await api.gql(tenant, CREATE_APPLICATION, c=foreign["id"], p="garbage"))[
        "createApplication"]
    assert out["application"] is None
    assert {(e["code"], tuple(e["field"])) for e in out["errors"]} == {
        ("NOT_FOUND", ("input", "candidateId")), ("NOT_FOUND", ("input", "positionId"))}
    # A position id passed as a candidate id is not a candidate either.
    out = (await api.gql(tenant, CREATE_APPLICATION, c=pid, p=pid))["createApplication"]
    assert [tuple(e["field"]) for e in out["errors"]] == [("input", "candidateId")]


async def test_positions_reasons_viewer_company(api, tenant):
    await create_position(api, tenant, "Zeta")
    await create_position(api, tenant, "Alpha")
    bad = (await api.gql(tenant, CREATE_POSITION, title="a\nb"))["createPosition"]
    assert bad["errors"][0]["field"] == ["input", "title"] and bad["position"] is None
    out = (await api.gql(tenant, """mutation { createRejectionReason(label: "Hiring freeze") {
        rejectionReason { id label } errors { code } } }"""))["createRejectionReason"]
    assert out["rejectionReason"]["label"] == "Hiring freeze"
    data = await api.gql(tenant, """{ positions { title } rejectionReasons { label }
        viewer { name email signature } company { name features { emailTemplates }
        emailSettings { senderNameMode recruitingAddress smtpConfigured } } }""")
    assert [p["title"] for p in data["positions"]] == ["Alpha", "Zeta"]
    # The starter reasons (English by default) and the new one, by label.
    labels = [r["label"] for r in data["rejectionReasons"]]
    assert "Hiring freeze" in labels and "Position filled" in labels and labels == sorted(labels)
    assert data["viewer"] == {"name": "Ada Admin", "email": "ada@acme.example",
                              "signature": None}
    assert data["company"] == {"name": "Acme Recruiting", "features": {"emailTemplates": True},
                               "emailSettings": {"senderNameMode": "EMPLOYEE",
                                                 "recruitingAddress": None,
                                                 "smtpConfigured": False}}
    assert await Position.all().count() == 2


async def test_signature_and_email_settings(api, tenant):
    out = (await api.gql(tenant, """mutation { updateMySignature(signature: " Ada\\nAcme ") {
        employee { signature } errors { code } } }"""))["updateMySignature"]
    assert out == {"employee": {"signature": "Ada\nAcme"}, "errors": []}
    mutation = """mutation($input: CompanyEmailSettingsInput!) {
      updateCompanyEmailSettings(input: $input) {
        company { emailSettings { senderNameMode recruitingAddress smtpConfigured smtpHost
                                  smtpPort smtpUsername smtpSecurity } }
        errors { code field } } }"""
    bad = (await api.gql(tenant, mutation, input={"recruitingAddress": "nope",
                                                  "smtpPort": 70000}))[
        "updateCompanyEmailSettings"]
    assert bad["company"] is None
    assert {tuple(e["field"]) for e in bad["errors"]} == {
        ("input", "recruitingAddress"), ("input", "smtpPort")}
    out = (await api.gql(tenant, mutation, input={
        "senderNameMode": "COMPANY", "recruitingAddress": "jobs@acme.example",
        "smtpHost": "smtp.acme.example", "smtpPort": 587, "smtpUsername": "jobs",
        "smtpPassword": "s3cret", "smtpSecurity": "STARTTLS"}))["updateCompanyEmailSettings"]
    assert out["errors"] == []
    assert out["company"]["emailSettings"] == {
        "senderNameMode": "COMPANY", "recruitingAddress": "jobs@acme.example",
        "smtpConfigured": True, "smtpHost": "smtp.acme.example", "smtpPort": 587,
        "smtpUsername": "jobs", "smtpSecurity": "STARTTLS"}
    row = await Company.get(id=tenant.company.id)
    assert row.smtp_password_encrypted and "s3cret" not in row.smtp_password_encrypted
    assert decrypt_secret(row.smtp_password_encrypted) == "s3cret"
    # Omitted fields stay; the password is write-only (no field to read it exists).
    out = (await api.gql(tenant, mutation, input={"smtpPort": 2525}))[
        "updateCompanyEmailSettings"]
    assert out["company"]["emailSettings"]["smtpHost"] == "smtp.acme.example"
    body = await api.post("{ company { emailSettings { smtpPassword } } }", token=tenant.token)
    assert body["errors"]


async def test_email_settings_need_an_admin(api, tenant):
    from core.services.admin import create_employee

    _, token = await create_employee(company_id=tenant.company.id, name="Rob Recruiter",
                                     email="rob@acme.example")
    body = await api.post("""mutation { updateCompanyEmailSettings(input: {smtpHost: "x.example"})
        { errors { code } } }""", token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await Company.get(id=tenant.company.id)).smtp_host is None
