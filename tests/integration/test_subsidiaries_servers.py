"""The limits and checks of a company's mail server apply per subsidiary server: pacing
per server, no server inside our network, testCompanySmtp and the last error per
subsidiary, a day's quota rebuilt per server. Real aiosmtpd servers, GraphQL and the real
arq worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from core.ids import parse_id, to_global_id
from core.models import Application, Candidate, Message, Subsidiary
from tests.support.fixtures import drain_tenant
from tests.support.subsidiaries import SEND, SEND_BULK, UPDATE, _applications, _create, _group, _position

TEST_SMTP = """mutation($input: CompanyEmailSettingsInput, $sub: ID) {
  testCompanySmtp(input: $input, subsidiaryId: $sub) {
    ok steps { step status message } errors { code field message } } }"""
SETTINGS_OF = """{ company { emailSettings { lastError } }
  subsidiaries { name emailSettings { smtpMaxPerMinute lastError lastErrorAt } } }"""


async def test_bulk_across_subsidiaries_is_paced_per_server(api, tenant, sink, run_worker,
                                                            local_servers, monkeypatch):
    from core.settings import reset_settings
    from tests.support.limited_smtp import Limits, start_limited

    # 4 a "minute" of 5 s for the NL server; the DE server has no limits.
    monkeypatch.setenv("RECRUITMAIL_PACING_MINUTE_SECONDS", "5")
    reset_settings()
    nl_server = await start_limited(Limits(per_window=4, window_seconds=5))
    de_server = await start_limited(Limits())
    try:
        nl = await _create(api, tenant, name="Acme Nederland B.V.", senderNameMode="COMPANY",
                           recruitingAddress="werving@acme.nl", smtpHost="127.0.0.1",
                           smtpPort=nl_server.port, smtpSecurity="NONE", smtpMaxPerMinute=4)
        de = await _create(api, tenant, name="Acme Deutschland GmbH",
                           recruitingAddress="karriere@acme.de", smtpHost="127.0.0.1",
                           smtpPort=de_server.port, smtpSecurity="NONE")
        assert nl["errors"] == [] and de["errors"] == []
        nl_pos = await _position(api, tenant, "Ops (NL)", nl["subsidiary"]["id"])
        de_pos = await _position(api, tenant, "Ops (DE)", de["subsidiary"]["id"])
        apps = (await _applications(tenant, nl_pos, "nl", 9)
                + await _applications(tenant, de_pos, "de", 9))
        out = (await api.gql(tenant, SEND_BULK, input={
            "applicationIds": apps, "subject": "Hi", "body": "Text"}))["sendBulkEmail"]
        assert out["errors"] == []
        await drain_tenant(run_worker, tenant)
        await nl_server.wait_for(9)
        await de_server.wait_for(9)
    finally:
        await nl_server.close()
        await de_server.close()
    assert {r.rcpt_tos[0].split("-")[0] for r in nl_server.received} == {"nl"}
    assert {r.rcpt_tos[0].split("-")[0] for r in de_server.received} == {"de"}
    # The NL server never had to refuse and no window of its "minute" held more than 4.
    assert nl_server.stats.rate_refusals == 0 and nl_server.max_in_window(5) <= 4
    msgs = await Message.filter(company_id=tenant.company.id)
    assert {m.status for m in msgs} == {"SENT"} and all(m.attempts == 1 for m in msgs)
    # Only the NL mails waited for their server; the DE server's were never held back.
    held = {m.to_addrs[0].split("-")[0] for m in msgs if m.expected_send_at is not None}
    assert held == {"nl"}
    data = (await api.gql(tenant, """query($id: ID!) { bulkOperation(id: $id) {
        state sent failed expectedCompletionAt } }""", id=out["bulkOperation"]["id"]))
    assert data["bulkOperation"]["state"] == "COMPLETED"
    assert data["bulkOperation"]["expectedCompletionAt"] is not None
    assert sink.received == []


async def test_a_subsidiary_server_is_never_a_way_into_our_network(api, tenant):
    for fields, field in (({"smtpHost": "169.254.169.254"}, "smtpHost"),
                          ({"smtpHost": "10.0.0.1"}, "smtpHost"),
                          ({"smtpHost": "127.0.0.1", "smtpPort": 587}, "smtpHost"),
                          ({"smtpHost": "smtp.gmail.com", "smtpPort": 5432}, "smtpPort")):
        out = await _create(api, tenant, name="Rogue", **fields)
        assert out["subsidiary"] is None
        assert [(e["code"], e["field"]) for e in out["errors"]] == [
            ("INVALID_INPUT", ["input", field])], (fields, out)
    assert await Subsidiary.all().count() == 0
    made = await _create(api, tenant, name="Acme Danmark")
    sid = made["subsidiary"]["id"]
    out = (await api.gql(tenant, UPDATE, id=sid, input={
        "name": "Renamed", "smtpHost": "192.168.1.10", "smtpPort": 25}))["updateSubsidiary"]
    assert [(e["code"], e["field"]) for e in out["errors"]] == [
        ("INVALID_INPUT", ["input", "smtpHost"])]
    row = await Subsidiary.get(id=parse_id(sid, "Subsidiary"))
    assert (row.name, row.smtp_host) == ("Acme Danmark", None)  # nothing half-written
    test = (await api.gql(tenant, TEST_SMTP, sub=sid, input={
        "smtpHost": "169.254.169.254", "smtpPort": 25}))["testCompanySmtp"]
    assert test["ok"] is False and test["steps"] == []
    assert [(e["code"], e["field"]) for e in test["errors"]] == [
        ("INVALID_INPUT", ["input", "smtpHost"])]


async def test_test_smtp_and_last_error_of_a_subsidiary_server(api, tenant, servers, sink,
                                                                run_worker):
    subs = await _group(api, tenant, servers)
    nl_id = subs["nl"]["id"]
    # testCompanySmtp on the subsidiary's stored settings: its login, its address.
    out = (await api.gql(tenant, TEST_SMTP, sub=nl_id))["testCompanySmtp"]
    assert out["ok"] is True, out
    assert [s["step"] for s in out["steps"]] == ["CONNECT", "AUTH", "MAIL_FROM"]
    assert "werving@acme.nl" in out["steps"][-1]["message"]
    out = (await api.gql(tenant, TEST_SMTP, sub=nl_id, input={"smtpPassword": "wrong"}))[
        "testCompanySmtp"]
    assert out["ok"] is False
    assert {s["step"]: s["status"] for s in out["steps"]}["AUTH"] == "FAILED"
    bad = (await api.gql(tenant, TEST_SMTP, sub=to_global_id("Subsidiary", uuid.uuid4())))[
        "testCompanySmtp"]
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [("NOT_FOUND", ["subsidiaryId"])]
    assert all(s.sink.received == [] for s in servers.values())  # nothing was sent

    # A wrong stored password: the mail fails, and the subsidiary (not the company) shows it.
    await api.gql(tenant, UPDATE, id=nl_id, input={"smtpPassword": "not it"})
    pos = await _position(api, tenant, "QA (NL)", nl_id)
    [app] = await _applications(tenant, pos, "nl", 1)
    cand = to_global_id("Candidate", (await Application.get(
        id=parse_id(app, "Application"))).candidate_id)
    sent = (await api.gql(tenant, SEND, input={"candidateId": cand, "applicationId": app,
                                               "subject": "Hi", "body": "Text"}))["sendMessage"]
    assert sent["errors"] == []
    await run_worker()
    msg = await Message.get(id=parse_id(sent["message"]["id"], "Message"))
    assert msg.status == "FAILED" and "refused the login" in (msg.error or "")
    shown = await api.gql(tenant, SETTINGS_OF)
    assert shown["company"]["emailSettings"]["lastError"] is None
    by_name = {s["name"]: s["emailSettings"] for s in shown["subsidiaries"]}
    assert "refused the login" in (by_name["Acme Nederland B.V."]["lastError"] or "")
    assert by_name["Acme Nederland B.V."]["lastErrorAt"] is not None
    assert by_name["Acme Deutschland GmbH"]["lastError"] is None
    # Fixing the password clears it.
    await api.gql(tenant, UPDATE, id=nl_id, input={"smtpPassword": "Nl pass 7§"})
    shown = await api.gql(tenant, SETTINGS_OF)
    assert all(s["emailSettings"]["lastError"] is None for s in shown["subsidiaries"])


async def test_each_server_counts_only_its_own_mails_when_redis_lost_them(tenant):
    """A day's quota is rebuilt from the database per server: the subsidiary's own sends
    count for its server, and not for the company's (and the other way round)."""
    from datetime import UTC, datetime

    from core.models import Company
    from core.services import pacing

    company = await Company.get(id=tenant.company.id)
    company.smtp_host, company.smtp_max_per_day = "mx.acme.example", 2
    await company.save()
    own = await Subsidiary.create(company_id=company.id, name="Acme NL",
                                  smtp_host="mx.acme.nl", smtp_max_per_day=2)
    bare = await Subsidiary.create(company_id=company.id, name="Acme BE")  # company's server
    cand = await Candidate.create(company_id=company.id, first_name="A", email="a@example.org")

    async def sent(subsidiary: Subsidiary | None, n: int) -> None:
        for _ in range(n):
            await Message.create(company_id=company.id, candidate_id=cand.id, kind="BULK",
                                 status="SENT", from_name="A", from_address="a@acme.example",
                                 to_addrs=["a@example.org"], subject="s", body="b",
                                 rfc_message_id=f"{uuid.uuid4().hex}@x",
                                 subsidiary_id=subsidiary.id if subsidiary else None,
                                 sent_at=datetime.now(UTC))

    await sent(own, 2)   # the NL server's day is full
    await sent(bare, 1)  # through the company's server
    # The NL server waits; the company's server (1 of 2 used) takes one more, then waits.
    assert await pacing.acquire(pacing.owner_key(own), company.id,
                                pacing.limits_of(own)) > 3600
    assert await pacing.acquire(pacing.owner_key(company), company.id,
                                pacing.limits_of(company)) == 0
    assert await pacing.acquire(pacing.owner_key(company), company.id,
                                pacing.limits_of(company)) > 3600
