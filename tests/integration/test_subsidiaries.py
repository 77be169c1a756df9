"""Managing subsidiaries: only admins create and change them, bad input is refused with
nothing written, the SMTP password is write-only and encrypted at rest. Through GraphQL,
on SQLite and PostgreSQL.

Their mails: test_subsidiaries_sending.py; their servers' limits and checks:
test_subsidiaries_servers.py."""

from __future__ import annotations

import uuid

from core.ids import parse_id, to_global_id
from core.models import Subsidiary
from core.security import decrypt_secret
from tests.support.personal_data import _database_views, _found
from tests.support.subsidiaries import CREATE, CREATE_POSITION, UPDATE, _create

LIST = """{ subsidiaries { id name emailSettings { recruitingAddress smtpHost }
                           positions { id title } } }"""


async def test_the_password_is_write_only_and_encrypted_at_rest(api, tenant, env):
    out = await _create(api, tenant, name="Acme France", smtpHost="smtp.acme.example",
                        smtpPort=587, smtpUsername="fr", smtpPassword="Zq8-unique-pw-fr-42",
                        smtpSecurity="STARTTLS")
    assert out["errors"] == []
    body = await api.post("{ subsidiaries { emailSettings { smtpPassword } } }",
                          token=tenant.token)
    assert body.get("errors")
    body = await api.post("{ subsidiaries { smtpPassword } }", token=tenant.token)
    assert body.get("errors")
    row = await Subsidiary.get(id=parse_id(out["subsidiary"]["id"], "Subsidiary"))
    assert row.smtp_password_encrypted
    assert decrypt_secret(row.smtp_password_encrypted) == "Zq8-unique-pw-fr-42"
    # An update of another field keeps it; a new one replaces it.
    await api.gql(tenant, UPDATE, id=out["subsidiary"]["id"], input={"smtpPort": 465})
    await row.refresh_from_db()
    assert decrypt_secret(row.smtp_password_encrypted or "") == "Zq8-unique-pw-fr-42"
    await api.gql(tenant, UPDATE, id=out["subsidiary"]["id"],
                  input={"smtpPassword": "Zq8-second-pw-fr-43"})
    await row.refresh_from_db()
    assert decrypt_secret(row.smtp_password_encrypted or "") == "Zq8-second-pw-fr-43"
    assert _found(_database_views(env), ["zq8-unique-pw-fr-42", "zq8-second-pw-fr-43"]) == []


async def test_only_admins_manage_subsidiaries(api, tenant):
    from core.services.admin import create_employee

    made = await _create(api, tenant, name="Acme Spain")
    sid = made["subsidiary"]["id"]
    _, token = await create_employee(company_id=tenant.company.id, name="Rob Recruiter",
                                     email="rob@acme.example")
    body = await api.post(CREATE, {"input": {"name": "Rogue", "smtpHost": "evil.example"}},
                          token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await api.post(UPDATE, {"id": sid, "input": {"name": "Renamed",
                                                        "smtpHost": "evil.example"}},
                          token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    rows = await Subsidiary.filter(company_id=tenant.company.id)
    assert [(r.name, r.smtp_host) for r in rows] == [("Acme Spain", None)]
    # Everyone may see them (to put a position under one) and create such positions.
    listed = await api.post(LIST, token=token)
    assert [s["name"] for s in listed["data"]["subsidiaries"]] == ["Acme Spain"]
    out = await api.post(CREATE_POSITION, {"input": {"title": "Ops", "subsidiaryId": sid}},
                         token=token)
    assert out["data"]["createPosition"]["position"]["subsidiary"] == {
        "id": sid, "name": "Acme Spain"}


async def test_bad_input_is_refused_and_nothing_written(api, tenant, other_tenant):
    assert (await _create(api, tenant, smtpHost="smtp.acme.example"))["errors"] == [
        {"code": "INVALID_INPUT", "field": ["input", "name"], "message": "A name is required."}]
    bad = await _create(api, tenant, name="  ", recruitingAddress="not an address",
                        smtpPort=70000, smtpHost="bad host!")
    assert bad["subsidiary"] is None
    assert {(e["code"], tuple(e["field"])) for e in bad["errors"]} == {
        ("INVALID_INPUT", ("input", "name")), ("INVALID_EMAIL", ("input", "recruitingAddress")),
        ("INVALID_INPUT", ("input", "smtpPort")), ("INVALID_INPUT", ("input", "smtpHost"))}
    assert await Subsidiary.all().count() == 0

    first = await _create(api, tenant, name="Acme Italia")
    sid = first["subsidiary"]["id"]
    dup = await _create(api, tenant, name="acme ITALIA")
    assert [e["code"] for e in dup["errors"]] == ["INVALID_INPUT"]
    assert dup["errors"][0]["field"] == ["input", "name"]
    # The same name in another company is fine.
    assert (await _create(api, other_tenant, name="Acme Italia"))["errors"] == []
    second = await _create(api, tenant, name="Acme Portugal")
    clash = (await api.gql(tenant, UPDATE, id=second["subsidiary"]["id"],
                           input={"name": "ACME Italia"}))["updateSubsidiary"]
    assert clash["errors"][0]["field"] == ["input", "name"]
    bad_update = (await api.gql(tenant, UPDATE, id=sid, input={
        "recruitingAddress": "x@", "smtpHost": "ok.example"}))["updateSubsidiary"]
    assert bad_update["subsidiary"] is None
    row = await Subsidiary.get(id=parse_id(sid, "Subsidiary"))
    assert (row.recruiting_address, row.smtp_host) == (None, None)  # nothing half-written
    # Renaming to its own name in another case is allowed.
    same = (await api.gql(tenant, UPDATE, id=sid, input={"name": "ACME Italia"}))[
        "updateSubsidiary"]
    assert same["errors"] == [] and same["subsidiary"]["name"] == "ACME Italia"

    # Another company's subsidiary, a malformed id, an unknown one: NOT_FOUND.
    theirs = (await api.gql(other_tenant, LIST))["subsidiaries"][0]["id"]
    for wrong in (theirs, "nope", to_global_id("Subsidiary", uuid.uuid4()),
                  to_global_id("Position", uuid.uuid4())):
        out = (await api.gql(tenant, UPDATE, id=wrong, input={"name": "Mine"}))[
            "updateSubsidiary"]
        assert [(e["code"], e["field"]) for e in out["errors"]] == [("NOT_FOUND", ["id"])]
        pos = (await api.gql(tenant, CREATE_POSITION, input={
            "title": "X", "subsidiaryId": wrong}))["createPosition"]
        assert pos["position"] is None
        assert [(e["code"], e["field"]) for e in pos["errors"]] == [
            ("NOT_FOUND", ["input", "subsidiaryId"])]
    node = await api.gql(tenant, "query($id: ID!) { node(id: $id) { id } }", id=theirs)
    assert node["node"] is None
    mine = await api.gql(tenant, "query($id: ID!) { node(id: $id) { ... on Subsidiary { name } } }",
                         id=sid)
    assert mine["node"] == {"name": "ACME Italia"}
    assert [s["name"] for s in (await api.gql(tenant, LIST))["subsidiaries"]] == [
        "ACME Italia", "Acme Portugal"]
