"""Issue 14 through GraphQL: candidate mails outside interviews — sendMessage's written
text filled exactly like its preview (unfillable placeholders refused), and bulk emails
and rejection emails in each candidate's language."""

from __future__ import annotations

from core.models import Message
from tests.support.template_graphql import (
    PREVIEW,
    REJECT,
    SEND,
    TEMPLATES,
)
from tests.support.template_graphql import candidate_with_application as _candidate

SEND_BULK = """mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) { bulkOperation { id total } errors { code field message } } }"""
MESSAGES = """query($b: ID!) { messages(bulkOperationId: $b) { edges { node {
  subject body candidate { language } } } } }"""


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
