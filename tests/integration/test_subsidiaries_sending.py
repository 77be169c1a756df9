"""Subsidiaries' mails: each subsidiary with its own recruiting address, sender name and
SMTP server (a real aiosmtpd server per subsidiary); a position's mails go out under its
subsidiary, replies and bounces come back as before. Through GraphQL and the real arq
worker, on SQLite and PostgreSQL."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from core.ids import parse_id, to_global_id
from core.models import Application, Message
from tests.support.subsidiaries import (
    SEND,
    SEND_BULK,
    UPDATE,
    _applications,
    _create,
    _group,
    _position,
    _server,
    _settings,
)

REJECT = """
mutation($input: RejectApplicationsInput!) {
  rejectApplications(input: $input) {
    bulkOperation { id total } errors { code field message } } }"""
MESSAGES = """
query($id: ID!) { bulkOperation(id: $id) {
  messages(first: 100) { edges { node { to fromName fromAddress status } } } } }"""
PREVIEW = """
query($input: PreviewMessageInput!) {
  previewMessage(input: $input) { fromName fromAddress subject errors { code } } }"""


def _from(received: Any) -> tuple[str, str]:
    return parseaddr(str(received.message["From"]))


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


async def test_replies_and_bounces_of_subsidiary_mail_come_back_as_before(
        api, tenant, servers, sink, run_worker, gateway):
    from email.message import EmailMessage

    from core.models.enums import MessageDirection, MessageStatus
    from tests.support.inbound import smtp_send
    from tests.support.inbound_mail import dsn

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
