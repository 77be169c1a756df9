"""Issue 14 through GraphQL: interview mails — invitations, reschedules and cancellations
from their default template in the candidate's language, from written text or a chosen
template, from the company's own default, and localised starter texts without the add-on."""

from __future__ import annotations

from core.models import Message
from tests.support.fixtures import Tenant, make_tenant
from tests.support.template_graphql import (
    CREATE_TEMPLATE,
    INVITE,
    PREVIEW,
    SCHEDULE,
    TEMPLATES,
)
from tests.support.template_graphql import candidate_with_application as _candidate
from tests.support.template_graphql import invited_interview as _invited

RESCHEDULE = """mutation($input: RescheduleInterviewInput!) {
  rescheduleInterview(input: $input) { interview { id sequence startsAt }
  message { id kind subject body } errors { code field message } } }"""
CANCEL = """mutation($input: CancelInterviewInput!) {
  cancelInterview(input: $input) { interview { id cancelled sequence }
  message { id kind subject body } errors { code field message } } }"""


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
