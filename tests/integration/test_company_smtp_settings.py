"""A company mail server's settings and checks (issue 13), from outside: testCompanySmtp
step by step, which hosts and ports may be used (checked again at send time), provider
presets. GraphQL, a real aiosmtpd server (tests/support/limited_smtp.py), the real arq
worker; every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from core.ids import to_global_id
from core.models import Company, Message
from tests.support.bulk_graphql import _applicants
from tests.support.company_smtp import SETTINGS, S, _knobs
from tests.support.limited_smtp import Limits, start_limited

TEST_SMTP = """mutation($input: CompanyEmailSettingsInput) {
  testCompanySmtp(input: $input) { ok steps { step ok status message }
                                   errors { code field message } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id status } errors { code field message } } }"""


async def test_test_company_smtp_step_by_step_and_nothing_sent(api, tenant, local_servers):
    server = await start_limited(Limits(), credentials=("jobs", "right pass"))
    closed = await start_limited(Limits())
    closed_port = closed.port
    await closed.close()
    try:
        base = {"smtpHost": "127.0.0.1", "smtpPort": server.port, "smtpSecurity": "NONE",
                "smtpUsername": "jobs"}
        out = (await api.gql(tenant, TEST_SMTP, input={**base, "smtpPassword": "wrong"}))[
            "testCompanySmtp"]
        steps = {s["step"]: s for s in out["steps"]}
        assert out["ok"] is False and out["errors"] == []
        assert steps["CONNECT"]["status"] == "OK"
        assert steps["AUTH"]["status"] == "FAILED"
        assert "refused the login of jobs" in steps["AUTH"]["message"]
        assert "535" in steps["AUTH"]["message"]
        assert steps["AUTH"]["ok"] is False
        assert list(steps) == ["CONNECT", "AUTH"]  # nothing after the failure, no TLS asked

        # Saved settings with the right password: every step succeeds.
        await api.gql(tenant, SETTINGS, input={**base, "smtpPassword": "right pass",
                                               "recruitingAddress": "jobs@acme.example"})
        out = (await api.gql(tenant, TEST_SMTP))["testCompanySmtp"]
        steps = {s["step"]: s for s in out["steps"]}
        assert out["ok"] is True
        assert [s["step"] for s in out["steps"]] == ["CONNECT", "AUTH", "MAIL_FROM"]
        assert all(s["ok"] and s["status"] == "OK" for s in out["steps"])
        assert "jobs@acme.example" in steps["MAIL_FROM"]["message"]
        assert "not encrypted" in steps["CONNECT"]["message"]

        # The sender refused: in words.
        server.handler.mail_reply = "553 5.7.1 Sender not allowed for this mailbox"
        out = (await api.gql(tenant, TEST_SMTP))["testCompanySmtp"]
        steps = {s["step"]: s for s in out["steps"]}
        assert out["ok"] is False and steps["MAIL_FROM"]["status"] == "FAILED"
        assert "Sender not allowed" in steps["MAIL_FROM"]["message"]
        server.handler.mail_reply = None

        # Nobody listening.
        out = (await api.gql(tenant, TEST_SMTP, input={"smtpPort": closed_port}))[
            "testCompanySmtp"]
        assert out["ok"] is False
        assert [(s["step"], s["ok"]) for s in out["steps"]] == [("CONNECT", False)]
    finally:
        await server.close()
    assert server.mails == []


async def test_test_company_smtp_checks_the_certificate(api, tenant, env, local_servers,
                                                        monkeypatch):
    from tests.support.tls import make_server_tls

    ca, server_ctx = make_server_tls(env.tmp / "tls")
    server = await start_limited(Limits(), credentials=("jobs", "pw"), tls_context=server_ctx,
                                 require_starttls=True)
    try:
        base = {"smtpHost": "127.0.0.1", "smtpPort": server.port, "smtpSecurity": "STARTTLS",
                "smtpUsername": "jobs", "smtpPassword": "pw"}
        # Our CA is not known: the TLS step names the certificate.
        out = (await api.gql(tenant, TEST_SMTP, input=base))["testCompanySmtp"]
        steps = {s["step"]: s for s in out["steps"]}
        assert steps["CONNECT"]["status"] == "OK"
        assert steps["TLS"]["status"] == "FAILED" and "certificate" in steps["TLS"]["message"]
        _knobs(monkeypatch, smtp_ca_file=str(ca))
        out = (await api.gql(tenant, TEST_SMTP, input=base))["testCompanySmtp"]
        assert out["ok"] is True, out
        assert {s["step"]: s["status"] for s in out["steps"]} == {
            "CONNECT": "OK", "TLS": "OK", "AUTH": "OK", "MAIL_FROM": "OK"}
    finally:
        await server.close()
    assert server.mails == []


async def test_only_an_admin_tests_the_server(api, tenant):
    from core.services.admin import create_employee

    _, token = await create_employee(company_id=tenant.company.id, name="Rob",
                                     email="rob@acme.example")
    body = await api.post("mutation { testCompanySmtp { ok } }", token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("host", ["169.254.169.254", "10.0.0.1", "127.0.0.1", "localhost",
                                  "::1", "0.0.0.0", "192.168.1.10", "[::ffff:127.0.0.1]",
                                  "2130706433", "127.1", "0x7f000001"])
async def test_our_own_network_is_refused(api, tenant, host):
    out = (await api.gql(tenant, SETTINGS, input={"smtpHost": host, "smtpPort": 587}))[
        "updateCompanyEmailSettings"]
    assert out["company"] is None
    assert [(e["code"], e["field"]) for e in out["errors"]] == [
        ("INVALID_INPUT", ["input", "smtpHost"])]
    assert (await Company.get(id=tenant.company.id)).smtp_host is None


async def test_other_ports_are_refused_and_the_operator_may_allow_more(api, tenant,
                                                                       monkeypatch):
    for port in (5432, 6379, 80, 22):
        out = (await api.gql(tenant, SETTINGS, input={"smtpHost": "93.184.216.34",
                                                      "smtpPort": port}))[
            "updateCompanyEmailSettings"]
        assert [(e["code"], e["field"]) for e in out["errors"]] == [
            ("INVALID_INPUT", ["input", "smtpPort"])], port
    for port in (25, 465, 587, 2525):
        out = (await api.gql(tenant, SETTINGS, input={"smtpHost": "93.184.216.34",
                                                      "smtpPort": port}))[
            "updateCompanyEmailSettings"]
        assert out["errors"] == []
    _knobs(monkeypatch, company_smtp_allowed_ports="2526")
    out = (await api.gql(tenant, SETTINGS, input={"smtpPort": 2526}))[
        "updateCompanyEmailSettings"]
    assert out["errors"] == [] and out["company"]["emailSettings"]["smtpPort"] == 2526


async def test_checked_again_at_send_time(api, tenant, run_worker, monkeypatch):
    """Settings saved while allowed (or a name whose DNS changed): the worker refuses to
    connect when the address is no longer allowed, and says so."""
    _knobs(monkeypatch, company_smtp_allowed_ports="1024-65535")
    server = await start_limited(Limits())
    try:
        await Company.filter(id=tenant.company.id).update(
            smtp_host="127.0.0.1", smtp_port=server.port, smtp_security="NONE")
        cand = (await _applicants(tenant, 1))[0]
        out = (await api.gql(tenant, SEND, input={
            "candidateId": to_global_id("Candidate", cand.candidate_id),
            "subject": "Hi", "body": "Hello"}))["sendMessage"]
        assert out["errors"] == []
        await run_worker(timeout=30)
    finally:
        await server.close()
    assert server.stats.connections == 0
    msg = await Message.get(company_id=tenant.company.id)
    assert msg.status == S.FAILED and "may not be used" in (msg.error or "")
    assert "loopback" in (msg.error or "")
    company = await Company.get(id=tenant.company.id)
    assert company.smtp_last_error and "loopback" in company.smtp_last_error


async def test_presets_fill_the_limits_and_explicit_values_win(api, tenant):
    out = (await api.gql(tenant, SETTINGS, input={
        "smtpHost": "smtp.office365.example", "smtpProvider": "MICROSOFT_365"}))[
        "updateCompanyEmailSettings"]
    assert out["errors"] == []
    s = out["company"]["emailSettings"]
    assert (s["smtpProvider"], s["smtpMaxPerMinute"], s["smtpMaxPerDay"],
            s["smtpMaxConnections"]) == ("MICROSOFT_365", 30, 10_000, 3)
    s = (await api.gql(tenant, SETTINGS, input={"smtpProvider": "GOOGLE_WORKSPACE",
                                                "smtpMaxPerMinute": 20}))[
        "updateCompanyEmailSettings"]["company"]["emailSettings"]
    assert (s["smtpMaxPerMinute"], s["smtpMaxPerDay"], s["smtpMaxConnections"]) == (
        20, 2_000, None)
    s = (await api.gql(tenant, SETTINGS, input={"smtpMaxPerDay": None}))[
        "updateCompanyEmailSettings"]["company"]["emailSettings"]
    assert (s["smtpMaxPerMinute"], s["smtpMaxPerDay"]) == (20, None)
    bad = (await api.gql(tenant, SETTINGS, input={"smtpMaxPerMinute": 0,
                                                  "smtpMaxConnections": -1}))[
        "updateCompanyEmailSettings"]
    assert {tuple(e["field"]) for e in bad["errors"]} == {
        ("input", "smtpMaxPerMinute"), ("input", "smtpMaxConnections")}
