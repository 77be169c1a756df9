"""Issue 14 through GraphQL: one template in several languages — each candidate gets the
version in their language (previewMessage shows what sendMessage stores and the sink
receives), translations are checked, kept or replaced on update, removed with their
template, and errors name the version they are in."""

from __future__ import annotations

from core.models import EmailTemplate, EmailTemplateTranslation, Message
from tests.support.template_graphql import (
    CREATE_TEMPLATE,
    PREVIEW,
    REJECT,
    SEND,
    TEMPLATES,
    UPDATE_TEMPLATE,
)
from tests.support.template_graphql import candidate_with_application as _candidate


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
