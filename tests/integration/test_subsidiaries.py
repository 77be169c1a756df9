"""Subsidiaries: each with its own recruiting address, sender name and SMTP server (a real
aiosmtpd server per subsidiary); a position's mails go out under its subsidiary. Through
GraphQL and the real arq worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import pytest

from core.ids import parse_id, to_global_id
from core.models import Application, Candidate, Message, Subsidiary
from core.security import decrypt_secret
from tests.integration.test_anonymize import _database_views, _found
from tests.support.fixtures import drain_tenant
from tests.support.sink import Sink, start_sink

CREATE = """
mutation($input: SubsidiaryInput!) {
  createSubsidiary(input: $input) {
    subsidiary { id name emailSettings { senderNameMode recruitingAddress smtpConfigured
                                         smtpHost smtpPort smtpUsername smtpSecurity } }
    errors { code field message } } }"""
UPDATE = """
mutation($id: ID!, $input: SubsidiaryInput!) {
  updateSubsidiary(id: $id, input: $input) {
    subsidiary { id name emailSettings { senderNameMode recruitingAddress smtpConfigured
                                         smtpHost smtpPort smtpUsername smtpSecurity } }
    errors { code field message } } }"""
LIST = """{ subsidiaries { id name emailSettings { recruitingAddress smtpHost }
                           positions { id title } } }"""
CREATE_POSITION = """
mutation($input: CreatePositionInput!) {
  createPosition(input: $input) { position { id title subsidiary { id name } }
                                  errors { code field message } } }"""
SEND_BULK = """
mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) { bulkOperation { id total } errors { code field message } } }"""
REJECT = """
mutation($input: RejectApplicationsInput!) {
  rejectApplications(input: $input) {
    bulkOperation { id total } errors { code field message } } }"""
SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id fromName fromAddress status }
                               errors { code field message } } }"""
MESSAGES = """
query($id: ID!) { bulkOperation(id: $id) {
  messages(first: 100) { edges { node { to fromName fromAddress status } } } } }"""
PREVIEW = """
query($input: PreviewMessageInput!) {
  previewMessage(input: $input) { fromName fromAddress subject errors { code } } }"""


@dataclass
class Server:
    sink: Sink
    logins: list[tuple[str, str]]


async def _server(user: str | None = None, password: str | None = None) -> Server:
    """A real SMTP server; with a user, it takes only that login (plain AUTH, no TLS)."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[str, str]] = []
    if user is None:
        return Server(await start_sink(), logins)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()) == (user, password)
        if ok:
            logins.append((user, password or ""))
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 on failure

    return Server(await start_sink(authenticator=authenticator, auth_required=True,
                                   auth_require_tls=False), logins)


@pytest.fixture
def local_servers(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator allows the loopback network and any high port (the test servers)."""
    from core.settings import reset_settings

    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", "1024-65535")
    reset_settings()


@pytest.fixture
async def servers(db: Any, local_servers: None) -> AsyncIterator[dict[str, Server]]:
    made = {"company": await _server(),
            "nl": await _server("nl-user", "Nl pass 7§"),
            "de": await _server("de-user", "De pass 8%")}
    try:
        yield made
    finally:
        for s in made.values():
            await s.sink.close()


def _settings(server: Server, address: str | None, user: str | None = None,
              password: str | None = None, **more: Any) -> dict[str, Any]:
    out = {"recruitingAddress": address, "smtpHost": "127.0.0.1",
           "smtpPort": server.sink.port, "smtpSecurity": "NONE", **more}
    if user:
        out |= {"smtpUsername": user, "smtpPassword": password}
    return out


async def _create(api: Any, tenant: Any, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = (await api.gql(tenant, CREATE, input=fields))["createSubsidiary"]
    return out


async def _position(api: Any, tenant: Any, title: str, subsidiary_id: str | None) -> str:
    out = (await api.gql(tenant, CREATE_POSITION, input={
        "title": title, "subsidiaryId": subsidiary_id}))["createPosition"]
    assert out["errors"] == [], out
    pid: str = out["position"]["id"]
    return pid


async def _applications(tenant: Any, position_gid: str, prefix: str, n: int) -> list[str]:
    """n candidates (prefix-i@example.org) with an application to the position each."""
    cid = tenant.company.id
    pos_id = parse_id(position_gid, "Position")
    out = []
    for i in range(n):
        cand = await Candidate.create(company_id=cid, first_name=f"{prefix}{i}",
                                      last_name="Test", email=f"{prefix}-{i}@example.org")
        app = await Application.create(company_id=cid, candidate_id=cand.id,
                                       position_id=pos_id)
        out.append(to_global_id("Application", app.id))
    return out


def _from(received: Any) -> tuple[str, str]:
    return parseaddr(str(received.message["From"]))


async def _group(api: Any, tenant: Any, servers: dict[str, Server]) -> dict[str, Any]:
    """The company (own server, sender names of employees) and two subsidiaries with their
    own servers: NL under its own name (mode COMPANY), DE under the employee's name."""
    out = (await api.gql(tenant, """mutation($input: CompanyEmailSettingsInput!) {
        updateCompanyEmailSettings(input: $input) { errors { code field } } }""",
                         input=_settings(servers["company"], "jobs@acme.example",
                                         senderNameMode="EMPLOYEE")))
    assert out["updateCompanyEmailSettings"]["errors"] == []
    nl = await _create(api, tenant, name="Acme Nederland B.V.", senderNameMode="COMPANY",
                       **_settings(servers["nl"], "werving@acme.nl", "nl-user", "Nl pass 7§"))
    de = await _create(api, tenant, name="Acme Deutschland GmbH", senderNameMode="EMPLOYEE",
                       **_settings(servers["de"], "karriere@acme.de", "de-user", "De pass 8%"))
    assert nl["errors"] == [] and de["errors"] == [], (nl, de)
    return {"nl": nl["subsidiary"], "de": de["subsidiary"]}


EXPECTED = {
    # server -> (From name, From address, candidate address prefix)
    "nl": ("Acme Nederland B.V.", "werving@acme.nl", "nl"),
    "de": ("Ada Admin", "karriere@acme.de", "de"),
    "company": ("Ada Admin", "jobs@acme.example", "hq"),
}
# What {{ company.name }} says in each one's mails.
COMPANY_NAME = {"nl": "Acme Nederland B.V.", "de": "Acme Deutschland GmbH",
                "company": "Acme Recruiting"}


async def test_bulk_email_goes_out_through_each_subsidiary_server(api, tenant, servers, sink,
                                                                   run_worker):
    subs = await _group(api, tenant, servers)
    assert subs["nl"]["emailSettings"] == {
        "senderNameMode": "COMPANY", "recruitingAddress": "werving@acme.nl",
        "smtpConfigured": True, "smtpHost": "127.0.0.1", "smtpPort": servers["nl"].sink.port,
        "smtpUsername": "nl-user", "smtpSecurity": "NONE"}
    nl_pos = await _position(api, tenant, "Backend Engineer (NL)", subs["nl"]["id"])
    de_pos = await _position(api, tenant, "Backend Engineer (DE)", subs["de"]["id"])
    hq_pos = await _position(api, tenant, "Backend Engineer", None)
    apps = (await _applications(tenant, nl_pos, "nl", 4)
            + await _applications(tenant, de_pos, "de", 3)
            + await _applications(tenant, hq_pos, "hq", 2))
    out = (await api.gql(tenant, SEND_BULK, input={
        "applicationIds": apps, "subject": "News about {{ position.title }}",
        "body": "Hello {{ candidate.first_name }}, greetings from {{ company.name }}"}))[
        "sendBulkEmail"]
    assert out["errors"] == [] and out["bulkOperation"]["total"] == 9
    await run_worker()
    counts = {"nl": 4, "de": 3, "company": 2}
    for key, (name, address, prefix) in EXPECTED.items():
        got = await servers[key].sink.wait_for(counts[key])
        assert len(got) == counts[key], key
        for mail in got:
            assert _from(mail) == (name, address), (key, mail.message["From"])
            text = mail.message.get_body(("plain",)).get_content()
            assert f"greetings from {COMPANY_NAME[key]}" in text, (key, text)
            [rcpt] = mail.rcpt_tos
            assert rcpt.startswith(prefix + "-"), (key, rcpt)
        assert sorted(m.rcpt_tos[0] for m in got) == [
            f"{prefix}-{i}@example.org" for i in range(counts[key])]
    assert sink.received == []  # nothing through the platform relay
    # Each subsidiary's server saw its own login, with the password that was set.
    assert set(servers["nl"].logins) == {("nl-user", "Nl pass 7§")}
    assert set(servers["de"].logins) == {("de-user", "De pass 8%")}
    # The messages show what was used.
    nodes = [e["node"] for e in (await api.gql(tenant, MESSAGES, id=out["bulkOperation"]["id"])
                                 )["bulkOperation"]["messages"]["edges"]]
    assert {n["status"] for n in nodes} == {"SENT"}
    for n in nodes:
        prefix = n["to"][0].split("-")[0]
        key = {"nl": "nl", "de": "de", "hq": "company"}[prefix]
        assert (n["fromName"], n["fromAddress"]) == EXPECTED[key][:2]


async def test_every_mail_about_an_application_goes_under_its_subsidiary(api, tenant, servers,
                                                                         sink, run_worker):
    subs = await _group(api, tenant, servers)
    nl_pos = await _position(api, tenant, "Designer (NL)", subs["nl"]["id"])
    de_pos = await _position(api, tenant, "Designer (DE)", subs["de"]["id"])
    [nl_app] = await _applications(tenant, nl_pos, "nl", 1)
    [de_app] = await _applications(tenant, de_pos, "de", 1)
    nl_cand = to_global_id("Candidate", (await Application.get(
        id=parse_id(nl_app, "Application"))).candidate_id)

    # The preview shows the subsidiary's sender for the application, the company's without.
    preview = (await api.gql(tenant, PREVIEW, input={
        "applicationId": nl_app, "subject": "Hi", "body": "Text"}))["previewMessage"]
    assert (preview["fromName"], preview["fromAddress"]) == EXPECTED["nl"][:2]
    preview = (await api.gql(tenant, PREVIEW, input={
        "candidateId": nl_cand, "subject": "Hi", "body": "Text"}))["previewMessage"]
    assert (preview["fromName"], preview["fromAddress"]) == EXPECTED["company"][:2]

    # A free message about the application: the subsidiary's; without one: the company's.
    about = (await api.gql(tenant, SEND, input={
        "candidateId": nl_cand, "applicationId": nl_app, "subject": "About your application",
        "body": "Text"}))["sendMessage"]
    plain = (await api.gql(tenant, SEND, input={
        "candidateId": nl_cand, "subject": "Hello", "body": "Text"}))["sendMessage"]
    assert (about["message"]["fromName"], about["message"]["fromAddress"]) == EXPECTED["nl"][:2]
    assert (plain["message"]["fromName"], plain["message"]["fromAddress"]) == \
        EXPECTED["company"][:2]

    # An interview invitation and a rejection across both subsidiaries.
    sched = (await api.gql(tenant, """mutation($input: ScheduleInterviewInput!) {
        scheduleInterview(input: $input) { interview { id } errors { code message } } }""",
                           input={"applicationId": de_app, "startsAt": "2027-05-06T10:00:00Z",
                                  "endsAt": "2027-05-06T11:00:00Z"}))["scheduleInterview"]
    assert sched["errors"] == []
    inv = (await api.gql(tenant, """mutation($input: SendInterviewInvitationInput!) {
        sendInterviewInvitation(input: $input) { message { fromName fromAddress }
                                                 errors { code message } } }""",
                         input={"interviewId": sched["interview"]["id"], "subject": "Interview",
                                "body": "Please come"}))["sendInterviewInvitation"]
    assert inv["errors"] == []
    assert (inv["message"]["fromName"], inv["message"]["fromAddress"]) == EXPECTED["de"][:2]
    reason = (await api.gql(tenant, """mutation { createRejectionReason(label: "Filled") {
        rejectionReason { id } } }"""))["createRejectionReason"]["rejectionReason"]["id"]
    tpl = (await api.gql(tenant, """mutation($input: EmailTemplateInput!) {
        createEmailTemplate(input: $input) { template { id } errors { code message } } }""",
                         input={"name": "No", "kind": "REJECTION", "subject": "Your application",
                                "body": "Sorry, {{ rejection.reason }}"}))["createEmailTemplate"]
    rej = (await api.gql(tenant, REJECT, input={
        "applicationIds": [nl_app, de_app], "reasonId": reason, "sendEmail": True,
        "templateId": tpl["template"]["id"]}))["rejectApplications"]
    assert rej["errors"] == [] and rej["bulkOperation"]["total"] == 2
    await run_worker()

    nl_mails = await servers["nl"].sink.wait_for(2)
    de_mails = await servers["de"].sink.wait_for(2)
    hq_mails = await servers["company"].sink.wait_for(1)
    assert sorted(str(m.message["Subject"]) for m in nl_mails) == [
        "About your application", "Your application"]
    assert sorted(str(m.message["Subject"]) for m in de_mails) == ["Interview",
                                                                  "Your application"]
    assert [str(m.message["Subject"]) for m in hq_mails] == ["Hello"]
    for key, mails in (("nl", nl_mails), ("de", de_mails), ("company", hq_mails)):
        for m in mails:
            assert _from(m) == EXPECTED[key][:2], (key, m.message["Subject"])
            # Replies still come back to our inbound gateway, whatever the From.
            assert parseaddr(str(m.message["Reply-To"]))[1].endswith("@in.mail.test")
    assert sink.received == []
    assert await Message.filter(status="SENT").count() == 5


async def test_subsidiary_without_own_server_or_address_uses_the_companys(api, tenant, servers,
                                                                          sink, run_worker):
    await api.gql(tenant, """mutation($input: CompanyEmailSettingsInput!) {
        updateCompanyEmailSettings(input: $input) { errors { code } } }""",
                  input=_settings(servers["company"], "jobs@acme.example",
                                  senderNameMode="EMPLOYEE"))
    bare = await _create(api, tenant, name="Acme Belgium", senderNameMode="COMPANY")
    assert bare["errors"] == []
    assert bare["subsidiary"]["emailSettings"] == {
        "senderNameMode": "COMPANY", "recruitingAddress": None, "smtpConfigured": False,
        "smtpHost": None, "smtpPort": None, "smtpUsername": None, "smtpSecurity": None}
    # Without a mode of its own, a subsidiary starts with the company's.
    inherit = await _create(api, tenant, name="Acme Austria")
    assert inherit["subsidiary"]["emailSettings"]["senderNameMode"] == "EMPLOYEE"
    pos = await _position(api, tenant, "Sales (BE)", bare["subsidiary"]["id"])
    apps = await _applications(tenant, pos, "be", 2)
    out = (await api.gql(tenant, SEND_BULK, input={
        "applicationIds": apps, "subject": "Hi", "body": "Text"}))["sendBulkEmail"]
    assert out["errors"] == []
    await run_worker()
    mails = await servers["company"].sink.wait_for(2)
    # The subsidiary's name (mode COMPANY), the company's address and server.
    assert {_from(m) for m in mails} == {("Acme Belgium", "jobs@acme.example")}
    assert servers["nl"].sink.received == [] and sink.received == []


async def test_changed_server_takes_effect_for_waiting_mails(api, tenant, servers, sink,
                                                             run_worker):
    """The server is looked up when a mail is sent: mails queued before an admin fixed a
    subsidiary's settings go through the corrected server."""
    subs = await _group(api, tenant, servers)
    pos = await _position(api, tenant, "Support (NL)", subs["nl"]["id"])
    apps = await _applications(tenant, pos, "nl", 2)
    assert (await api.gql(tenant, SEND_BULK, input={
        "applicationIds": apps, "subject": "Hi", "body": "Text"}))["sendBulkEmail"][
        "errors"] == []
    moved = await _server("nl-user", "New pass")
    try:
        out = (await api.gql(tenant, UPDATE, id=subs["nl"]["id"], input={
            "smtpPort": moved.sink.port, "smtpPassword": "New pass"}))["updateSubsidiary"]
        assert out["errors"] == []
        # Omitted fields stayed.
        assert out["subsidiary"]["emailSettings"]["recruitingAddress"] == "werving@acme.nl"
        assert out["subsidiary"]["name"] == "Acme Nederland B.V."
        await run_worker()
        assert len(await moved.sink.wait_for(2)) == 2
        assert moved.logins and servers["nl"].sink.received == []
    finally:
        await moved.sink.close()


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


async def test_replies_and_bounces_of_subsidiary_mail_come_back_as_before(
        api, tenant, servers, sink, run_worker, gateway):
    from email.message import EmailMessage

    from core.models.enums import MessageDirection, MessageStatus
    from tests.integration.test_inbound import dsn
    from tests.support.inbound import smtp_send

    subs = await _group(api, tenant, servers)
    pos = await _position(api, tenant, "Analyst (NL)", subs["nl"]["id"])
    apps = await _applications(tenant, pos, "nl", 2)
    out = (await api.gql(tenant, SEND_BULK, input={
        "applicationIds": apps, "subject": "Next steps", "body": "Text"}))["sendBulkEmail"]
    assert out["errors"] == []
    await run_worker()
    first, second = sorted(await servers["nl"].sink.wait_for(2), key=lambda m: m.rcpt_tos[0])
    assert _from(first) == EXPECTED["nl"][:2]
    # The candidate answers (to the Reply-To, at our inbound domain): threaded in.
    reply = EmailMessage()
    reply["From"] = "Nl Zero <nl-0@example.org>"
    reply["To"] = str(first.message["Reply-To"])
    reply["Subject"] = "Re: Next steps"
    reply["Message-ID"] = "<nl-reply-1@example.org>"
    reply["In-Reply-To"] = str(first.message["Message-ID"])
    reply.set_content("Sounds good.")
    rcpt = parseaddr(str(first.message["Reply-To"]))[1]
    assert (await smtp_send(gateway.port, reply.as_bytes(), rcpt,
                            mail_from="nl-0@example.org")).code == 250
    [inbound] = await Message.filter(direction=MessageDirection.INBOUND)
    assert inbound.status == MessageStatus.RECEIVED and inbound.subject == "Re: Next steps"
    assert str(inbound.application_id) == str(parse_id(apps[0], "Application"))
    # The second candidate's server bounces it: the bounce comes to the envelope sender.
    report = dsn(second.data, second.rcpt_tos[0])
    assert (await smtp_send(gateway.port, report, second.mail_from, mail_from="")).code == 250
    bounced = [m for m in await Message.filter(direction=MessageDirection.OUTBOUND)
               if m.status == MessageStatus.BOUNCED]
    assert [m.to_addrs for m in bounced] == [[second.rcpt_tos[0]]]


# --- the limits and checks of a company's server apply per subsidiary server --------------

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
