"""Issue 14 through GraphQL and the command: the starter set of templates and rejection
reasons every company gets, in the company's language, editable per company, also from
`recruitmail admin create-company` and for a company made before the starter set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core.models import Company, EmailTemplate, EmailTemplateTranslation, RejectionReason
from core.services.admin import create_company
from tests.support.fixtures import make_tenant
from tests.support.template_graphql import TEMPLATES, UPDATE_TEMPLATE

KINDS = {"INTERVIEW_INVITATION", "INTERVIEW_UPDATE", "INTERVIEW_CANCELLATION", "REJECTION",
         "MESSAGE"}


async def test_new_company_has_starter_templates_and_reasons(api, tenant):
    templates = (await api.gql(tenant, TEMPLATES))["emailTemplates"]
    assert {t["kind"] for t in templates} == KINDS and len(templates) == 5
    for t in templates:
        assert t["language"] == "en" and t["isDefault"] is True
        assert sorted(x["language"] for x in t["translations"]) == ["de", "nl"]
        assert "{{" in t["body"] and t["name"]
    reasons = (await api.gql(tenant, "{ rejectionReasons { label } }"))["rejectionReasons"]
    assert "Position filled" in [r["label"] for r in reasons] and len(reasons) >= 5
    # Each company has its own, editable copy.
    other = await make_tenant("Globex", "Gus", "gus@globex.example")
    theirs = (await api.gql(other, TEMPLATES))["emailTemplates"]
    assert not {t["id"] for t in theirs} & {t["id"] for t in templates}
    [rejection] = [t for t in templates if t["kind"] == "REJECTION"]
    out = (await api.gql(tenant, UPDATE_TEMPLATE, id=rejection["id"], input={
        "name": "Our rejection", "kind": "REJECTION", "subject": "Sorry {{ candidate.first_name }}",
        "body": "No."}))["updateEmailTemplate"]
    assert out["errors"] == [] and out["template"]["isDefault"] is True
    assert sorted(x["language"] for x in out["template"]["translations"]) == ["de", "nl"]
    again = (await api.gql(other, TEMPLATES, kind="REJECTION"))["emailTemplates"]
    assert again[0]["subject"].startswith("Your application")


async def test_company_language_and_no_addon(db):
    company, _, _ = await create_company(name="Bakkerij", admin_name="Bea",
                                         admin_email="bea@bakkerij.example", language="nl")
    labels = [r.label for r in await RejectionReason.filter(company_id=company.id)]
    assert "Vacature vervuld" in labels
    rows = await EmailTemplate.filter(company_id=company.id)
    assert {t.language for t in rows} == {"nl"} and len(rows) == 5
    assert {t.name for t in rows} >= {"Afwijzing", "Uitnodiging voor een gesprek"}
    langs = {t.language for t in await EmailTemplateTranslation.filter(template__company_id=company.id)}
    assert langs == {"en", "de"}
    plain, _, _ = await create_company(name="Plain", admin_name="Pat", admin_email="p@plain.example",
                                       templates=False)
    assert await EmailTemplate.filter(company_id=plain.id).count() == 0
    assert await RejectionReason.filter(company_id=plain.id).count() >= 5


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recruitmail", "admin", *args],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


async def test_cli_create_company_language(db):
    done = _cli("create-company", "Gmbh", "--admin-name", "Dora", "--admin-email",
                "dora@gmbh.example", "--language", "de")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    company = await Company.get(name="Gmbh")
    assert out["company_id"] and out["token"]
    labels = {r.label for r in await RejectionReason.filter(company_id=company.id)}
    assert "Stelle bereits besetzt" in labels
    assert {t.language for t in await EmailTemplate.filter(company_id=company.id)} == {"de"}
    bad = _cli("create-company", "X", "--admin-name", "X", "--admin-email", "x@x.example",
               "--language", "fr")
    assert bad.returncode != 0 and "fr" in bad.stderr
    assert not await Company.filter(name="X").exists()


async def test_seed_if_empty_for_a_company_made_before_the_starter_set(db):
    from core.services.starter import seed_if_empty

    company, _, _ = await create_company(name="Old", admin_name="O", admin_email="o@old.example")
    await EmailTemplate.filter(company_id=company.id).delete()
    await RejectionReason.filter(company_id=company.id).delete()
    await seed_if_empty(company)
    await seed_if_empty(company)  # a second start adds nothing
    assert await EmailTemplate.filter(company_id=company.id).count() == 5
    labels = [r.label for r in await RejectionReason.filter(company_id=company.id)]
    assert len(labels) == len(set(labels)) >= 5
