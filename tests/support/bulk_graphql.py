"""Bulk operations through GraphQL, for the bulk tests: applicants inserted in bulk, bulk
email, email templates and the bulkOperation query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.ids import to_global_id
from core.models import Application, Candidate, Position

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
# What sendBulkEmail and rejectApplications return.
BULK_PAYLOAD = """{
    bulkOperation { id kind state total queued sent failed scheduledAt }
    errors { code message field }
  }"""
SEND_BULK = """
mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) """ + BULK_PAYLOAD + """
}"""


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


async def _send_bulk(api: Any, tenant: Any, applicants: list[Applicant],
                     **fields: Any) -> dict[str, Any]:
    payload = {"applicationIds": [a.app_gid for a in applicants], **fields}
    if "templateId" not in payload:
        payload.setdefault("subject", "News for {{ candidate.first_name }}")
        payload.setdefault("body", "Hello {{ candidate.first_name }}, there is news.")
    out: dict[str, Any] = (await api.gql(tenant, SEND_BULK, input=payload))["sendBulkEmail"]
    return out


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
