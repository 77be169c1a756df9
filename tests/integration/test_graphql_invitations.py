"""Issue 3 through GraphQL: templates per language, previews that match what is sent,
interview invitations that validate, signatures, sender identity and the company's SMTP."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import icalendar
import pytest

from core.models import Company, EmailTemplate, Message
from tests.support.fixtures import make_tenant
from tests.support.paths import RUN
from tests.support.template_graphql import CREATE_APPLICATION, CREATE_CANDIDATE, CREATE_POSITION

SCHEDULE = """mutation($input: ScheduleInterviewInput!) {
  scheduleInterview(input: $input) { interview { id details sequence candidateResponse }
  errors { code field message } } }"""
CREATE_TEMPLATE = """mutation($input: EmailTemplateInput!) {
  createEmailTemplate(input: $input) { template { id } errors { code field message } } }"""
PREVIEW = """query($input: PreviewMessageInput!) { previewMessage(input: $input) {
  subject body fromName fromAddress missingPlaceholders errors { code field message } } }"""
INVITE = """mutation($input: SendInterviewInvitationInput!) {
  sendInterviewInvitation(input: $input) { message { id status subject body }
  errors { code field message } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id status body fromName } errors { code field message } } }"""

TEMPLATE_BODY = (
    "Hallo {{ candidate.first_name }},\n\nJe gesprek voor {{ position.title }} is op "
    "{{ interview.date }} om {{ interview.start_time }}.\nVideo: {{ interview.video_link }}"
)


async def _candidate_application(api, tenant, first, email, language, tz):
    c = await api.gql(tenant, CREATE_CANDIDATE, input={
        "firstName": first, "lastName": "Tester", "email": email, "language": language,
        "timezone": tz})
    cid = c["createCandidate"]["candidate"]["id"]
    p = await api.gql(tenant, CREATE_POSITION)
    pid = p["createPosition"]["position"]["id"]
    a = await api.gql(tenant, CREATE_APPLICATION, c=cid, p=pid)
    return cid, a["createApplication"]["application"]["id"]


async def _interview(api, tenant, app_id):
    data = await api.gql(tenant, SCHEDULE, input={
        "applicationId": app_id, "startsAt": "2027-12-14T13:00:00Z",
        "endsAt": "2027-12-14T14:00:00Z", "timezone": "Europe/Amsterdam",
        "videoLink": "https://meet.example/abc", "location": "Keizersgracht 1, Amsterdam"})
    assert data["scheduleInterview"]["errors"] == []
    return data["scheduleInterview"]["interview"]


def _calendar_part(mail) -> str:
    [part] = [p for p in mail.message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    return str(part.get_content())


def _validate_with_tools(ics_text: str, tmp: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the ical.js validator cannot run")
    path = tmp / "invite.ics"
    path.write_text(ics_text)
    for tool, args in (("ics-check.mjs", [str(path), "--strict"]), ("ics-libical.py", [str(path)])):
        done = subprocess.run([str(RUN), tool, *args], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (tool, done.stdout, done.stderr)


async def test_template_per_language_preview_is_what_is_sent(api, tenant, sink, run_worker, env):
    _nl_cand, nl_app = await _candidate_application(api, tenant, "Nina", "nina@example.org", "nl",
                                                   "Europe/Amsterdam")
    _en_cand, en_app = await _candidate_application(api, tenant, "Ed", "ed@example.org", "en",
                                                   "America/New_York")
    tpl = await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "Invite", "kind": "INTERVIEW_INVITATION",
        "subject": "Gesprek {{ position.title }}", "body": TEMPLATE_BODY})
    assert tpl["createEmailTemplate"]["errors"] == []
    tpl_id = tpl["createEmailTemplate"]["template"]["id"]

    sent_bodies = {}
    for app_id, expect_date, expect_time in (
        (nl_app, "dinsdag 14 december 2027", "14:00"),
        (en_app, "Tuesday, December 14, 2027", "8:00 AM"),
    ):
        interview = await _interview(api, tenant, app_id)
        preview = (await api.gql(tenant, PREVIEW, input={
            "interviewId": interview["id"], "templateId": tpl_id}))["previewMessage"]
        assert preview["errors"] == [] and preview["missingPlaceholders"] == []
        assert expect_date in preview["body"] and expect_time in preview["body"]
        assert "https://meet.example/abc" in preview["body"]
        sent = (await api.gql(tenant, INVITE, input={"interviewId": interview["id"],
                                                     "templateId": tpl_id}))
        msg = sent["sendInterviewInvitation"]
        assert msg["errors"] == []
        assert msg["message"]["body"] == preview["body"]
        assert msg["message"]["subject"] == preview["subject"] == "Gesprek Backend Engineer"
        sent_bodies[app_id] = preview["body"]

    await run_worker()
    mails = await sink.wait_for(2)
    for mail in mails:
        text = mail.message.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n")
        assert text in {b.rstrip("\n") for b in sent_bodies.values()}
        ics_text = _calendar_part(mail)
        cal = icalendar.Calendar.from_ical(ics_text)
        [ev] = cal.walk("VEVENT")
        assert str(ev["URL"]) == "https://meet.example/abc"
    _validate_with_tools(_calendar_part(mails[0]), env.tmp)


async def test_templates_refuse_unknown_and_dunder(api, tenant):
    for body, needle in (("{{ candidate.__class__ }}", "__class__"), ("Hi {{ unknown }}", "unknown")):
        data = await api.gql(tenant, CREATE_TEMPLATE, input={
            "name": "Bad", "kind": "MESSAGE", "subject": "Hi", "body": body})
        errors = data["createEmailTemplate"]["errors"]
        assert errors and errors[0]["code"] == "TEMPLATE_ERROR"
        assert errors[0]["field"] == ["input", "body"]
        assert needle in errors[0]["message"]
    assert await EmailTemplate.filter(name="Bad").count() == 0


async def test_template_unfillable_at_send_stores_nothing(api, tenant):
    cid, _app_id = await _candidate_application(api, tenant, "Nina", "nina@example.org", "nl",
                                               "Europe/Amsterdam")
    tpl = await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "Invite", "kind": "INTERVIEW_INVITATION", "subject": "Hi", "body": TEMPLATE_BODY})
    tpl_id = tpl["createEmailTemplate"]["template"]["id"]
    # An invitation template used for a plain message: its interview placeholders cannot fill.
    data = await api.gql(tenant, SEND, input={"candidateId": cid, "templateId": tpl_id})
    errors = data["sendMessage"]["errors"]
    assert errors and errors[0]["code"] in ("TEMPLATE_ERROR", "INVALID_INPUT")
    assert await Message.all().count() == 0


async def test_feature_not_enabled(api, db):
    tenant = await make_tenant("NoTemplates", templates=False)
    cid, _ = await _candidate_application(api, tenant, "Nina", "nina@example.org", "nl",
                                          "Europe/Amsterdam")
    other = await make_tenant("WithTemplates", "Wes", "wes@with.example")
    tpl = await api.gql(other, CREATE_TEMPLATE, input={
        "name": "T", "kind": "MESSAGE", "subject": "Hi", "body": "Hello"})
    tpl_id = tpl["createEmailTemplate"]["template"]["id"]
    data = await api.gql(tenant, SEND, input={"candidateId": cid, "templateId": tpl_id})
    assert [e["code"] for e in data["sendMessage"]["errors"]] == ["FEATURE_NOT_ENABLED"]
    data = await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "T", "kind": "MESSAGE", "subject": "Hi", "body": "Hello"})
    assert [e["code"] for e in data["createEmailTemplate"]["errors"]] == ["FEATURE_NOT_ENABLED"]
    assert await Message.all().count() == 0


async def test_signature_and_company_sender_name(api, tenant, sink, run_worker):
    cid, _ = await _candidate_application(api, tenant, "Nina", "nina@example.org", "nl",
                                          "Europe/Amsterdam")
    await api.gql(tenant, """mutation { updateMySignature(signature: "Ada Admin\\nRecruiter <b>") {
        errors { code } } }""")
    data = await api.gql(tenant, """mutation { updateCompanyEmailSettings(input: {
        senderNameMode: COMPANY, recruitingAddress: "jobs@acme.example"}) { errors { code field } } }""")
    assert data["updateCompanyEmailSettings"]["errors"] == []
    sent = await api.gql(tenant, SEND, input={"candidateId": cid, "subject": "Hi",
                                              "body": "Hello <script>x</script>",
                                              "cc": ["boss@acme.example"]})
    assert sent["sendMessage"]["message"]["fromName"] == "Acme Recruiting"
    await run_worker()
    [mail] = await sink.wait_for(1)
    m = mail.message
    assert m["From"].addresses[0].display_name == "Acme Recruiting"
    assert m["From"].addresses[0].addr_spec == "jobs@acme.example"
    text = m.get_body(("plain",)).get_content()
    html = m.get_body(("html",)).get_content()
    assert "-- \nAda Admin\nRecruiter <b>" in text.replace("\r\n", "\n")
    assert "Recruiter &lt;b&gt;" in html and "&lt;script&gt;" in html and "<script>" not in html


async def test_company_own_smtp_with_starttls_and_auth(api, tenant, sink, run_worker, env,
                                                       monkeypatch):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from core.settings import reset_settings
    from tests.support.sink import start_sink
    from tests.support.tls import make_server_tls

    ca, server_ctx = make_server_tls(env.tmp / "tls")
    monkeypatch.setenv("RECRUITMAIL_SMTP_CA_FILE", str(ca))
    # The operator allows the loopback network and high ports for company servers (issue 13).
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_NETWORKS", "127.0.0.0/8,::1")
    monkeypatch.setenv("RECRUITMAIL_COMPANY_SMTP_ALLOWED_PORTS", "1024-65535")
    reset_settings()
    seen: list[str] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            (auth_data.login, auth_data.password) == (b"acme", b"s3cret pass")
        if ok:
            seen.append(auth_data.login.decode())
        return AuthResult(success=ok)

    own = await start_sink(tls_context=server_ctx, require_starttls=True,
                           authenticator=authenticator, auth_required=True)
    try:
        data = await api.gql(tenant, """mutation($port: Int!) { updateCompanyEmailSettings(input: {
            smtpHost: "localhost", smtpPort: $port, smtpUsername: "acme",
            smtpPassword: "s3cret pass", smtpSecurity: STARTTLS}) {
            company { emailSettings { smtpConfigured smtpHost smtpPort smtpUsername smtpSecurity } }
            errors { code field message } } }""", port=own.port)
        settings = data["updateCompanyEmailSettings"]
        assert settings["errors"] == []
        assert settings["company"]["emailSettings"]["smtpConfigured"] is True
        row = await Company.get(id=tenant.company.id)
        assert row.smtp_password_encrypted and "s3cret" not in row.smtp_password_encrypted
        cid, _ = await _candidate_application(api, tenant, "Nina", "nina@example.org", "nl",
                                              "Europe/Amsterdam")
        await api.gql(tenant, SEND, input={"candidateId": cid, "subject": "Own", "body": "Text"})
        await run_worker()
        [mail] = await own.wait_for(1)
        assert mail.message["Subject"] == "Own"
        assert seen == ["acme"]
        assert sink.received == []
    finally:
        await own.close()
