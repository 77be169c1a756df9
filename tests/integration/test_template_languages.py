"""Issue 14 through GraphQL and the command: the starter set in every company, one template
in several languages, every candidate mail editable and localised, and one rendering path
(what previewMessage shows is what every send mutation stores and the sink receives)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core.models import (
    Company,
    EmailTemplate,
    EmailTemplateTranslation,
    Message,
    RejectionReason,
)
from core.services.admin import create_company
from tests.support.fixtures import Tenant, make_tenant

CREATE_CANDIDATE = """mutation($input: CreateCandidateInput!) {
  createCandidate(input: $input) { candidate { id } errors { code field message } } }"""
CREATE_POSITION = """mutation { createPosition(input: {title: "Backend Engineer"}) {
  position { id } errors { code } } }"""
CREATE_APPLICATION = """mutation($c: ID!, $p: ID!) {
  createApplication(input: {candidateId: $c, positionId: $p}) { application { id } errors { code } } }"""
SCHEDULE = """mutation($input: ScheduleInterviewInput!) {
  scheduleInterview(input: $input) { interview { id title } errors { code field message } } }"""
TEMPLATE_FIELDS = "id name kind language isDefault subject body translations { language subject body }"
TEMPLATES = "query($kind: TemplateKind) { emailTemplates(kind: $kind) { " + TEMPLATE_FIELDS + " } }"
CREATE_TEMPLATE = """mutation($input: EmailTemplateInput!) {
  createEmailTemplate(input: $input) { template { """ + TEMPLATE_FIELDS + """ }
  errors { code field message } } }"""
UPDATE_TEMPLATE = """mutation($id: ID!, $input: EmailTemplateInput!) {
  updateEmailTemplate(id: $id, input: $input) { template { """ + TEMPLATE_FIELDS + """ }
  errors { code field message } } }"""
PREVIEW = """query($input: PreviewMessageInput!) { previewMessage(input: $input) {
  subject body language missingPlaceholders errors { code field message } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id subject body } errors { code field message } } }"""
INVITE = """mutation($input: SendInterviewInvitationInput!) {
  sendInterviewInvitation(input: $input) { message { id subject body }
  errors { code field message } } }"""
RESCHEDULE = """mutation($input: RescheduleInterviewInput!) {
  rescheduleInterview(input: $input) { interview { id sequence startsAt }
  message { id kind subject body } errors { code field message } } }"""
CANCEL = """mutation($input: CancelInterviewInput!) {
  cancelInterview(input: $input) { interview { id cancelled sequence }
  message { id kind subject body } errors { code field message } } }"""
SEND_BULK = """mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) { bulkOperation { id total } errors { code field message } } }"""
REJECT = """mutation($input: RejectApplicationsInput!) {
  rejectApplications(input: $input) { bulkOperation { id total } errors { code field message } } }"""
MESSAGES = """query($b: ID!) { messages(bulkOperationId: $b) { edges { node {
  subject body candidate { language } } } } }"""

KINDS = {"INTERVIEW_INVITATION", "INTERVIEW_UPDATE", "INTERVIEW_CANCELLATION", "REJECTION",
         "MESSAGE"}


async def _candidate(api, tenant, first, language, *, tz="Europe/Amsterdam", position=None):
    c = await api.gql(tenant, CREATE_CANDIDATE, input={
        "firstName": first, "lastName": "Tester", "email": f"{first.lower()}@example.org",
        "language": language, "timezone": tz})
    assert c["createCandidate"]["errors"] == []
    cid = c["createCandidate"]["candidate"]["id"]
    if position is None:
        position = (await api.gql(tenant, CREATE_POSITION))["createPosition"]["position"]["id"]
    a = await api.gql(tenant, CREATE_APPLICATION, c=cid, p=position)
    return cid, a["createApplication"]["application"]["id"], position


async def _invited(api, tenant, app_id, *, video="https://meet.example/abc"):
    """A scheduled interview with its invitation sent (so a reschedule or cancel notifies)."""
    data = await api.gql(tenant, SCHEDULE, input={
        "applicationId": app_id, "startsAt": "2027-12-14T13:00:00Z",
        "endsAt": "2027-12-14T14:00:00Z", "timezone": "Europe/Amsterdam", "videoLink": video})
    assert data["scheduleInterview"]["errors"] == []
    iv = data["scheduleInterview"]["interview"]
    sent = await api.gql(tenant, INVITE, input={
        "interviewId": iv["id"], "subject": "Invitation", "body": "See you {{ interview.date }}"})
    assert sent["sendInterviewInvitation"]["errors"] == []
    return iv


# --------------------------------------------------------------------------- the starter set


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


# --------------------------------------------------------------------------- language versions


async def test_translation_per_candidate_preview_equals_sent(api, tenant, sink, run_worker):
    tpl = (await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "Docs", "kind": "MESSAGE", "language": "en",
        "subject": "Documents, {{ candidate.first_name }}",
        "body": "Please send your CV, {{ candidate.first_name }}.",
        "translations": [{"language": "nl", "subject": "Documenten, {{ candidate.first_name }}",
                          "body": "Stuur uw cv, {{ candidate.first_name }}."}]}))["createEmailTemplate"]
    assert tpl["errors"] == []
    assert tpl["template"]["translations"] == [{
        "language": "nl", "subject": "Documenten, {{ candidate.first_name }}",
        "body": "Stuur uw cv, {{ candidate.first_name }}."}]
    tpl_id = tpl["template"]["id"]
    expected = {"Nina": ("nl", "Documenten, Nina"), "Bram": ("nl", "Documenten, Bram"),
                "Ed": ("en", "Documents, Ed"), "Dirk": ("en", "Documents, Dirk")}
    position = None
    for first, language in (("Nina", "nl"), ("Bram", "nl-BE"), ("Ed", "en"), ("Dirk", "de")):
        cid, _app_id, position = await _candidate(api, tenant, first, language, position=position)
        preview = (await api.gql(tenant, PREVIEW, input={"candidateId": cid,
                                                         "templateId": tpl_id}))["previewMessage"]
        assert preview["errors"] == []
        assert (preview["language"], preview["subject"]) == expected[first]
        sent = (await api.gql(tenant, SEND, input={"candidateId": cid, "templateId": tpl_id}))
        msg = sent["sendMessage"]["message"]
        assert (msg["subject"], msg["body"]) == (preview["subject"], preview["body"])
    await run_worker()
    mails = await sink.wait_for(4)
    assert sorted(m.message["Subject"] for m in mails) == sorted(v[1] for v in expected.values())


async def test_translation_checks(api, tenant):
    base = {"name": "T", "kind": "MESSAGE", "subject": "Hi", "body": "Hello"}
    cases = [
        ({"translations": [{"language": "nl", "subject": "Hoi", "body": "Hallo {{ candidate.shoe }}"}]},
         "TEMPLATE_ERROR", ["input", "translations", "0", "body"], "nl"),
        ({"translations": [{"language": "de", "subject": "Hallo\nX", "body": "Hallo"}]},
         "TEMPLATE_ERROR", ["input", "translations", "0", "subject"], "de"),
        ({"translations": [{"language": "nl", "subject": "Datum", "body": "{{ interview.date }}"}]},
         "TEMPLATE_ERROR", ["input", "translations", "0", "body"], "interview.date"),
        ({"translations": [{"language": "en", "subject": "Hi", "body": "Hello"}]},
         "INVALID_INPUT", ["input", "translations", "0", "language"], "en"),
        ({"translations": [{"language": "nl", "subject": "a", "body": "b"},
                           {"language": "NL", "subject": "a", "body": "b"}]},
         "INVALID_INPUT", ["input", "translations", "1", "language"], "nl"),
        ({"translations": [{"language": "dutch!", "subject": "a", "body": "b"}]},
         "INVALID_INPUT", ["input", "translations", "0", "language"], "dutch"),
        ({"language": ""}, "INVALID_INPUT", ["input", "language"], "language"),
    ]
    before = await EmailTemplate.all().count()
    for extra, code, field, needle in cases:
        out = (await api.gql(tenant, CREATE_TEMPLATE, input={**base, **extra}))["createEmailTemplate"]
        assert out["template"] is None, extra
        assert [(e["code"], e["field"]) for e in out["errors"]] == [(code, field)], out["errors"]
        assert needle in out["errors"][0]["message"]
    assert await EmailTemplate.all().count() == before
    assert await EmailTemplateTranslation.filter(template__name="T").count() == 0


async def test_update_keeps_or_replaces_translations_and_one_default(api, tenant):
    created = (await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "Mine", "kind": "INTERVIEW_UPDATE", "language": "nl-BE", "isDefault": True,
        "subject": "Verzet: {{ interview.title }}", "body": "Nieuw: {{ interview.date }}",
        "translations": [{"language": "en", "subject": "Moved", "body": "{{ interview.date }}"}]}
    ))["createEmailTemplate"]
    assert created["errors"] == [] and created["template"]["language"] == "nl-BE"
    tid = created["template"]["id"]
    updates = (await api.gql(tenant, TEMPLATES, kind="INTERVIEW_UPDATE"))["emailTemplates"]
    assert [t["id"] for t in updates if t["isDefault"]] == [tid]
    # Omitted translations are kept; isDefault omitted keeps it.
    out = (await api.gql(tenant, UPDATE_TEMPLATE, id=tid, input={
        "name": "Mine 2", "kind": "INTERVIEW_UPDATE", "language": "nl",
        "subject": "Verzet", "body": "Nieuw"}))["updateEmailTemplate"]
    assert out["errors"] == []
    assert [t["language"] for t in out["template"]["translations"]] == ["en"]
    assert out["template"]["isDefault"] is True and out["template"]["language"] == "nl"
    # A kept translation must suit a new kind: interview placeholders in a MESSAGE are refused.
    out = (await api.gql(tenant, UPDATE_TEMPLATE, id=tid, input={
        "name": "Mine 3", "kind": "MESSAGE", "subject": "a", "body": "b"}))["updateEmailTemplate"]
    assert out["errors"] and out["errors"][0]["code"] == "TEMPLATE_ERROR"
    assert "en version" in out["errors"][0]["message"]
    # [] removes them; isDefault false stops being the default.
    out = (await api.gql(tenant, UPDATE_TEMPLATE, id=tid, input={
        "name": "Mine", "kind": "INTERVIEW_UPDATE", "subject": "a", "body": "b",
        "translations": [], "isDefault": False}))["updateEmailTemplate"]
    assert out["template"]["translations"] == [] and out["template"]["isDefault"] is False
    assert out["template"]["language"] == "nl"  # omitted: unchanged
    # A new template without a language is English.
    out = (await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "Plain", "kind": "MESSAGE", "subject": "a", "body": "b"}))["createEmailTemplate"]
    assert out["template"]["language"] == "en" and out["template"]["isDefault"] is False


# --------------------------------------------------------------------------- interview mails


async def test_reschedule_and_cancel_default_in_candidate_language(api, tenant, sink, run_worker):
    _, app_id, _ = await _candidate(api, tenant, "Nina", "nl-BE")
    iv = await _invited(api, tenant, app_id)
    assert iv["title"] == "Sollicitatiegesprek – Backend Engineer"
    moved = (await api.gql(tenant, RESCHEDULE, input={
        "interviewId": iv["id"], "startsAt": "2027-12-15T09:00:00Z",
        "endsAt": "2027-12-15T10:00:00Z"}))["rescheduleInterview"]
    assert moved["errors"] == []
    msg = moved["message"]
    assert msg["kind"] == "INTERVIEW_UPDATE"
    assert msg["subject"] == "Gewijzigde uitnodiging: Sollicitatiegesprek – Backend Engineer"
    assert "woensdag 15 december 2027" in msg["body"] and "10:00" in msg["body"]
    assert msg["body"].startswith("Beste Nina,")
    preview = (await api.gql(tenant, PREVIEW, input={
        "interviewId": iv["id"], "kind": "INTERVIEW_CANCELLATION"}))["previewMessage"]
    assert preview["errors"] == [] and preview["language"] == "nl"
    cancelled = (await api.gql(tenant, CANCEL, input={"interviewId": iv["id"]}))["cancelInterview"]
    assert cancelled["errors"] == [] and cancelled["interview"]["cancelled"] is True
    msg = cancelled["message"]
    assert msg["subject"] == "Geannuleerd: Sollicitatiegesprek – Backend Engineer"
    assert (msg["subject"], msg["body"]) == (preview["subject"], preview["body"])
    await run_worker()
    mails = await sink.wait_for(3)
    methods = {}
    for m in mails:
        [cal] = [p for p in m.message.walk() if p.get_content_type() == "text/calendar"]
        methods[m.message["Subject"]] = cal.get_param("method")
    assert methods["Gewijzigde uitnodiging: Sollicitatiegesprek – Backend Engineer"] == "REQUEST"
    assert methods["Geannuleerd: Sollicitatiegesprek – Backend Engineer"] == "CANCEL"


async def test_reschedule_and_cancel_with_texts_and_templates(api, tenant):
    _, app_id, _ = await _candidate(api, tenant, "Ed", "en", tz="Europe/London")
    iv = await _invited(api, tenant, app_id, video="")
    moved = (await api.gql(tenant, RESCHEDULE, input={
        "interviewId": iv["id"], "startsAt": "2027-12-15T09:00:00Z", "endsAt": "2027-12-15T10:00:00Z",
        "subject": "New time, {{ candidate.first_name }}",
        "body": "Now {{ interview.start_time }}. Link: "
                "{{ interview.video_link | default(\"the link follows\") }}"}))["rescheduleInterview"]
    assert moved["errors"] == []
    assert moved["message"]["subject"] == "New time, Ed"
    assert moved["message"]["body"].startswith("Now 9:00 AM. Link: the link follows")
    # A body alone replaces the default's body; its subject stays.
    moved = (await api.gql(tenant, RESCHEDULE, input={
        "interviewId": iv["id"], "startsAt": "2027-12-16T09:00:00Z", "endsAt": "2027-12-16T10:00:00Z",
        "body": "Moved again."}))["rescheduleInterview"]
    assert moved["message"]["subject"] == "Updated invitation: Interview – Backend Engineer"
    assert moved["message"]["body"].startswith("Moved again.")
    sequence = moved["interview"]["sequence"]
    # Refused texts and templates change nothing.
    [invitation_tpl] = (await api.gql(tenant, TEMPLATES, kind="INTERVIEW_INVITATION"))["emailTemplates"]
    for extra, code, field in (
        ({"body": "Hi {{ candidate.shoe_size }}"}, "TEMPLATE_ERROR", ["input", "body"]),
        ({"subject": "  "}, "INVALID_INPUT", ["input", "subject"]),
        ({"templateId": invitation_tpl["id"]}, "INVALID_INPUT", ["input", "templateId"]),
        ({"templateId": "garbage"}, "NOT_FOUND", ["input", "templateId"]),
    ):
        out = (await api.gql(tenant, RESCHEDULE, input={
            "interviewId": iv["id"], "startsAt": "2027-12-19T09:00:00Z",
            "endsAt": "2027-12-19T10:00:00Z", **extra}))["rescheduleInterview"]
        assert [(e["code"], e["field"]) for e in out["errors"]] == [(code, field)], extra
    count = await Message.filter(kind="INTERVIEW_UPDATE").count()
    assert count == 2
    [cancel_tpl] = (await api.gql(tenant, TEMPLATES, kind="INTERVIEW_CANCELLATION"))["emailTemplates"]
    mine = (await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "Short cancel", "kind": "INTERVIEW_CANCELLATION",
        "subject": "Off: {{ interview.date }}", "body": "Sorry {{ candidate.first_name }}."}
    ))["createEmailTemplate"]["template"]
    assert cancel_tpl["isDefault"] and not mine["isDefault"]
    out = (await api.gql(tenant, CANCEL, input={"interviewId": iv["id"], "templateId": mine["id"]}
                         ))["cancelInterview"]
    assert out["errors"] == [] and out["interview"]["sequence"] == sequence + 1
    assert out["message"]["subject"] == "Off: Thursday, December 16, 2027"
    assert out["message"]["body"].startswith("Sorry Ed.")


async def test_company_default_template_is_used(api, tenant):
    mine = (await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "House style", "kind": "INTERVIEW_UPDATE", "isDefault": True,
        "subject": "Moved: {{ interview.title }}", "body": "See {{ interview.date }}.",
        "translations": [{"language": "de", "subject": "Verschoben: {{ interview.title }}",
                          "body": "Siehe {{ interview.date }}."}]}))["createEmailTemplate"]
    assert mine["errors"] == []
    defaults = [t for t in (await api.gql(tenant, TEMPLATES, kind="INTERVIEW_UPDATE"))["emailTemplates"]
                if t["isDefault"]]
    assert [t["id"] for t in defaults] == [mine["template"]["id"]]
    _, app_id, _ = await _candidate(api, tenant, "Dora", "de-AT", tz="Europe/Vienna")
    iv = await _invited(api, tenant, app_id)
    out = (await api.gql(tenant, RESCHEDULE, input={
        "interviewId": iv["id"], "startsAt": "2027-12-15T09:00:00Z",
        "endsAt": "2027-12-15T10:00:00Z"}))["rescheduleInterview"]
    assert out["message"]["subject"] == "Verschoben: Vorstellungsgespräch – Backend Engineer"
    assert out["message"]["body"].startswith("Siehe Mittwoch, 15. Dezember 2027.")


async def test_without_addon_localised_notices(api, db):
    plain: Tenant = await make_tenant("Plain", "Pat", "pat@plain.example", templates=False)
    _, app_id, _ = await _candidate(api, plain, "Dora", "de", tz="Europe/Berlin")
    iv = await _invited(api, plain, app_id)
    assert iv["title"] == "Vorstellungsgespräch – Backend Engineer"
    out = (await api.gql(plain, RESCHEDULE, input={
        "interviewId": iv["id"], "startsAt": "2027-12-15T09:00:00Z",
        "endsAt": "2027-12-15T10:00:00Z"}))["rescheduleInterview"]
    assert out["errors"] == []
    assert out["message"]["subject"] == "Geänderte Einladung: Vorstellungsgespräch – Backend Engineer"
    assert "Mittwoch, 15. Dezember 2027" in out["message"]["body"]
    out = (await api.gql(plain, CANCEL, input={"interviewId": iv["id"],
                                               "templateId": "RW1haWxUZW1wbGF0ZTox"}))["cancelInterview"]
    assert out["errors"][0]["code"] in ("NOT_FOUND", "FEATURE_NOT_ENABLED")
    out = (await api.gql(plain, CANCEL, input={"interviewId": iv["id"]}))["cancelInterview"]
    assert out["message"]["subject"] == "Abgesagt: Vorstellungsgespräch – Backend Engineer"
    assert out["message"]["body"].startswith("Guten Tag Dora Tester,")


# --------------------------------------------------------------------------- written text


async def test_send_message_fills_placeholders_like_its_preview(api, tenant, sink, run_worker):
    cid, app_id, _ = await _candidate(api, tenant, "Nina", "nl")
    text = {"subject": "Hi {{ candidate.first_name }}",
            "body": "About {{ position.title }}: {{ interview.video_link | default(\"the link follows\") }}"}
    preview = (await api.gql(tenant, PREVIEW, input={"applicationId": app_id, **text}))["previewMessage"]
    assert preview["errors"] == [] and preview["subject"] == "Hi Nina"
    assert preview["body"] == "About Backend Engineer: the link follows"
    assert preview["language"] == "nl"
    sent = (await api.gql(tenant, SEND, input={"candidateId": cid, "applicationId": app_id, **text}
                          ))["sendMessage"]
    assert sent["errors"] == []
    assert (sent["message"]["subject"], sent["message"]["body"]) == (preview["subject"], preview["body"])
    # Unfillable or unknown placeholders in written text are refused, nothing is stored.
    for body, needle in (("Your interview: {{ interview.date }}", "interview.date"),
                         ("Hi {{ candidate.nickname }}", "candidate.nickname")):
        out = (await api.gql(tenant, SEND, input={"candidateId": cid, "subject": "x", "body": body}
                             ))["sendMessage"]
        assert out["message"] is None and out["errors"][0]["code"] == "TEMPLATE_ERROR"
        assert out["errors"][0]["field"] == ["input", "body"] and needle in out["errors"][0]["message"]
    assert await Message.all().count() == 1
    await run_worker()
    [mail] = await sink.wait_for(1)
    assert mail.message["Subject"] == "Hi Nina"
    assert "About Backend Engineer: the link follows" in mail.message.get_body(("plain",)).get_content()


async def test_invitation_default_fills_empty_video_link(api, tenant):
    _, app_id, _ = await _candidate(api, tenant, "Ed", "en")
    data = await api.gql(tenant, SCHEDULE, input={
        "applicationId": app_id, "startsAt": "2027-12-14T13:00:00Z",
        "endsAt": "2027-12-14T14:00:00Z"})
    iv = data["scheduleInterview"]["interview"]
    text = {"subject": "Interview", "body": "Join: {{ interview.video_link | default('the link follows') }}"}
    preview = (await api.gql(tenant, PREVIEW, input={"interviewId": iv["id"], **text}))["previewMessage"]
    sent = (await api.gql(tenant, INVITE, input={"interviewId": iv["id"], **text}))
    msg = sent["sendInterviewInvitation"]["message"]
    assert msg["body"] == preview["body"] == "Join: the link follows"


async def test_bulk_email_and_rejection_in_each_language(api, tenant):
    position = None
    apps = []
    for first, language in (("Nina", "nl"), ("Ed", "en"), ("Dora", "de-CH")):
        _, app_id, position = await _candidate(api, tenant, first, language, position=position)
        apps.append(app_id)
    [message_tpl] = (await api.gql(tenant, TEMPLATES, kind="MESSAGE"))["emailTemplates"]
    out = (await api.gql(tenant, SEND_BULK, input={"applicationIds": apps,
                                                   "templateId": message_tpl["id"]}))["sendBulkEmail"]
    assert out["errors"] == [] and out["bulkOperation"]["total"] == 3
    nodes = (await api.gql(tenant, MESSAGES, b=out["bulkOperation"]["id"]))["messages"]["edges"]
    subjects = {n["node"]["candidate"]["language"]: n["node"]["subject"] for n in nodes}
    assert subjects == {"nl": "Documenten voor uw sollicitatie: Backend Engineer",
                        "en": "Documents for your application: Backend Engineer",
                        "de-CH": "Unterlagen zu Ihrer Bewerbung als Backend Engineer"}
    # A rejection email without templateId: the company's default REJECTION template.
    reasons = (await api.gql(tenant, "{ rejectionReasons { id label } }"))["rejectionReasons"]
    out = (await api.gql(tenant, REJECT, input={"applicationIds": apps, "reasonId": reasons[0]["id"],
                                                "sendEmail": True}))["rejectApplications"]
    assert out["errors"] == [] and out["bulkOperation"]["total"] == 3
    nodes = (await api.gql(tenant, MESSAGES, b=out["bulkOperation"]["id"]))["messages"]["edges"]
    subjects = {n["node"]["candidate"]["language"]: n["node"]["subject"] for n in nodes}
    assert subjects == {"nl": "Uw sollicitatie naar de functie van Backend Engineer",
                        "en": "Your application for Backend Engineer",
                        "de-CH": "Ihre Bewerbung als Backend Engineer"}


async def test_invitation_without_text_uses_the_default(api, tenant, db):
    _, app_id, _ = await _candidate(api, tenant, "Nina", "nl")
    data = await api.gql(tenant, SCHEDULE, input={
        "applicationId": app_id, "startsAt": "2027-12-14T13:00:00Z",
        "endsAt": "2027-12-14T14:00:00Z", "location": "Keizersgracht 1, Amsterdam"})
    iv = data["scheduleInterview"]["interview"]
    preview = (await api.gql(tenant, PREVIEW, input={"interviewId": iv["id"],
                                                     "kind": "INTERVIEW_INVITATION"}))["previewMessage"]
    out = (await api.gql(tenant, INVITE, input={"interviewId": iv["id"]}))["sendInterviewInvitation"]
    assert out["errors"] == []
    assert out["message"]["subject"] == preview["subject"] == \
        "Uitnodiging: Sollicitatiegesprek – Backend Engineer"
    assert out["message"]["body"] == preview["body"]
    assert "dinsdag 14 december 2027" in preview["body"] and "Keizersgracht 1" in preview["body"]
    # The same without the add-on: the starter text.
    plain = await make_tenant("Plain", "Pat", "pat@plain.example", templates=False)
    _, app_id, _ = await _candidate(api, plain, "Ed", "en-GB", tz="Europe/London")
    data = await api.gql(plain, SCHEDULE, input={
        "applicationId": app_id, "startsAt": "2027-12-14T13:00:00Z", "endsAt": "2027-12-14T14:00:00Z"})
    out = (await api.gql(plain, INVITE, input={
        "interviewId": data["scheduleInterview"]["interview"]["id"]}))["sendInterviewInvitation"]
    assert out["message"]["subject"] == "Invitation: Interview – Backend Engineer"
    assert out["message"]["body"].startswith("Dear Ed,")


async def test_deleting_a_template_removes_its_translations(api, tenant):
    [tpl] = (await api.gql(tenant, TEMPLATES, kind="REJECTION"))["emailTemplates"]
    out = await api.gql(tenant, """mutation($id: ID!) { deleteEmailTemplate(id: $id) {
        deletedId errors { code } } }""", id=tpl["id"])
    assert out["deleteEmailTemplate"]["errors"] == []
    assert await EmailTemplateTranslation.filter(template__company_id=tenant.company.id,
                                                 template__kind="REJECTION").count() == 0
    assert await EmailTemplateTranslation.all().count() == 8  # the other four kinds' nl and de
    # Without a REJECTION template the rejection email falls back to the starter text.
    _, app_id, _ = await _candidate(api, tenant, "Nina", "nl")
    reasons = (await api.gql(tenant, "{ rejectionReasons { id } }"))["rejectionReasons"]
    out = (await api.gql(tenant, REJECT, input={"applicationIds": [app_id],
                                                "reasonId": reasons[0]["id"],
                                                "sendEmail": True}))["rejectApplications"]
    assert out["errors"] == []
    [msg] = await Message.filter(kind="REJECTION")
    assert msg.subject == "Uw sollicitatie naar de functie van Backend Engineer"


async def test_main_text_error_names_its_language_beside_translations(api, tenant):
    out = (await api.gql(tenant, CREATE_TEMPLATE, input={
        "name": "T", "kind": "MESSAGE", "language": "de", "subject": "Hallo",
        "body": "{{ kandidat.name }}",
        "translations": [{"language": "en", "subject": "Hi", "body": "{{ candidate.first_name }}"}]}
    ))["createEmailTemplate"]
    [error] = out["errors"]
    assert (error["code"], error["field"]) == ("TEMPLATE_ERROR", ["input", "body"])
    assert error["message"].startswith("de version:") and "kandidat.name" in error["message"]


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
