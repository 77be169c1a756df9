"""Company-wide things (email templates, rejection reasons, email settings) are changed by
admins only (FORBIDDEN otherwise, nothing written); every employee may use them."""

from __future__ import annotations

from typing import Any

from core.models import EmailTemplate, RejectionReason

TEMPLATE = {"name": "Friendly no", "kind": "REJECTION", "subject": "Your application",
            "body": "Dear {{ candidate.first_name }}, thank you."}
CREATE = """mutation($input: EmailTemplateInput!) {
  createEmailTemplate(input: $input) { template { id name } errors { code field } } }"""
UPDATE = """mutation($id: ID!, $input: EmailTemplateInput!) {
  updateEmailTemplate(id: $id, input: $input) { template { id name } errors { code } } }"""
DELETE = """mutation($id: ID!) { deleteEmailTemplate(id: $id) { deletedId errors { code } } }"""
REASON = """mutation($l: String!) { createRejectionReason(label: $l) {
  rejectionReason { id label } errors { code } } }"""


def _forbidden(body: dict[str, Any]) -> None:
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert "admin" in body["errors"][0]["message"]


async def test_a_non_admin_cannot_change_company_wide_things(api: Any, tenant: Any) -> None:
    from core.services.admin import create_employee

    _, rob = await create_employee(company_id=tenant.company.id, name="Rob Recruiter",
                                   email="rob@acme.example")
    made = await api.gql(tenant, CREATE, input=TEMPLATE)
    tid = made["createEmailTemplate"]["template"]["id"]
    templates = await EmailTemplate.filter(company_id=tenant.company.id).count()
    reasons = await RejectionReason.filter(company_id=tenant.company.id).count()

    _forbidden(await api.post(DELETE, {"id": tid}, token=rob))
    _forbidden(await api.post(UPDATE, {"id": tid, "input": {**TEMPLATE, "name": "Mine"}},
                              token=rob))
    _forbidden(await api.post(CREATE, {"input": {**TEMPLATE, "name": "Rob's"}}, token=rob))
    _forbidden(await api.post(REASON, {"l": "Rob's reason"}, token=rob))
    _forbidden(await api.post("""mutation { updateCompanyEmailSettings(
        input: {recruitingAddress: "rob@acme.example"}) { errors { code } } }""", token=rob))
    assert await EmailTemplate.filter(company_id=tenant.company.id).count() == templates
    assert (await EmailTemplate.get(id=_uuid(tid))).name == "Friendly no"
    assert await RejectionReason.filter(company_id=tenant.company.id).count() == reasons

    # Everyone may use them.
    seen = await api.post("""{ emailTemplates(kind: REJECTION) { id name }
        rejectionReasons { id label } }""", token=rob)
    assert tid in [t["id"] for t in seen["data"]["emailTemplates"]]

    # The admin still can.
    out = await api.gql(tenant, UPDATE, id=tid, input={**TEMPLATE, "name": "Kind no"})
    assert out["updateEmailTemplate"]["template"]["name"] == "Kind no"
    out = await api.gql(tenant, REASON, l="Position filled")
    assert out["createRejectionReason"]["rejectionReason"]["label"] == "Position filled"
    out = await api.gql(tenant, DELETE, id=tid)
    assert out["deleteEmailTemplate"]["deletedId"] == tid


def _uuid(gid: str) -> Any:
    from core.ids import from_global_id

    parsed = from_global_id(gid)
    assert parsed is not None
    return parsed[1]
