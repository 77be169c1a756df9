"""Anonymising a candidate ends their interviews: an upcoming interview whose invitation
was sent gets a METHOD:CANCEL in the candidate's calendar before anything is erased, and
afterwards every mutation on their interviews answers a UserError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from core.ids import to_global_id
from core.models import Application, Candidate, Interview, Message, Position, RejectionReason
from core.models.enums import MessageKind, MessageStatus
from core.services import interviews

REJECT = """mutation($input: RejectApplicationsInput!) { rejectApplications(input: $input) {
  bulkOperation { id } errors { code field message } } }"""


async def _candidate(tenant: Any, email: str, first: str) -> tuple[Candidate, Application]:
    cand = await Candidate.create(company_id=tenant.company.id, first_name=first,
                                  last_name="de Vries", email=email, timezone="Europe/Amsterdam")
    pos = await Position.create(company_id=tenant.company.id, title="Backend Engineer")
    app = await Application.create(company_id=tenant.company.id, candidate=cand, position=pos)
    return cand, app


async def _interview(tenant: Any, app: Application, days: float, *, invite: bool) -> Interview:
    start = datetime.now(UTC) + timedelta(days=days)
    iv = await interviews.schedule_interview(
        employee=tenant.employee, application_id=app.id, starts_at=start,
        ends_at=start + timedelta(hours=1), location="Room 4")
    if invite:
        await interviews.send_invitation(employee=tenant.employee, interview_id=iv.id,
                                         subject="Invitation", body="See you.")
    return iv


def _calendar(mail: Any) -> tuple[str, Any]:
    [part] = [p for p in mail.message.walk() if p.get_content_type() == "text/calendar"]
    cal = icalendar.Calendar.from_ical(part.get_content())
    [event] = cal.walk("VEVENT")
    return str(cal["METHOD"]), event


async def test_rejecting_with_anonymisation_cancels_the_interviews_first(
        api: Any, tenant: Any, sink: Any, run_worker: Any) -> None:
    nina, nina_app = await _candidate(tenant, "nina@example.org", "Nina")
    olaf, olaf_app = await _candidate(tenant, "olaf@example.org", "Olaf")
    invited = await _interview(tenant, nina_app, 3, invite=True)
    uninvited = await _interview(tenant, nina_app, 5, invite=False)
    await _interview(tenant, olaf_app, 4, invite=False)
    await run_worker()
    [invitation] = await sink.wait_for(1)
    assert _calendar(invitation)[0] == "REQUEST"
    reason = await RejectionReason.create(company_id=tenant.company.id, label="Filled")

    out = (await api.gql(tenant, REJECT, input={
        "applicationIds": [to_global_id("Application", nina_app.id),
                           to_global_id("Application", olaf_app.id)],
        "reasonId": to_global_id("RejectionReason", reason.id), "anonymize": True,
    }))["rejectApplications"]
    assert out["errors"] == []
    # Olaf had no invitation out: erased at once. Nina waits for her calendar's CANCEL.
    assert (await Candidate.get(id=olaf.id)).anonymized_at is not None
    assert (await Candidate.get(id=nina.id)).email == "nina@example.org"
    assert await Interview.filter(application_id__in=[nina_app.id, olaf_app.id],
                                  cancelled=False).count() == 0

    await run_worker()
    mails = await sink.wait_for(2)
    method, event = _calendar(mails[1])
    assert method == "CANCEL" and mails[1].rcpt_tos == ["nina@example.org"]
    assert str(event["UID"]) == invited.uid and int(event["SEQUENCE"]) == invited.sequence + 1
    assert str(event["ATTENDEE"]).lower() == "mailto:nina@example.org"
    assert len(sink.received) == 2  # nothing for the interview that was never sent
    cancel = await Message.get(interview_id=invited.id, kind=MessageKind.INTERVIEW_CANCELLATION)
    assert cancel.status == MessageStatus.SENT
    erased = await Candidate.get(id=nina.id)
    assert erased.anonymized_at is not None and erased.email is None

    gid = to_global_id("Interview", invited.id)
    other = to_global_id("Interview", uninvited.id)
    for mutation, variables in (
        ("cancelInterview(input: {interviewId: $id})", {"id": gid}),
        ("cancelInterview(input: {interviewId: $id, notifyCandidate: false})", {"id": other}),
        ("rescheduleInterview(input: {interviewId: $id, startsAt: $s, endsAt: $e})",
         {"id": gid}),
        ('sendInterviewInvitation(input: {interviewId: $id, subject: "Hi", body: "x"})',
         {"id": other}),
    ):
        start = datetime.now(UTC) + timedelta(days=6)
        decl = "$id: ID!" + (", $s: DateTime!, $e: DateTime!" if "$s" in mutation else "")
        if "$s" in mutation:
            variables = {**variables, "s": start.isoformat(),
                         "e": (start + timedelta(hours=1)).isoformat()}
        name = mutation.split("(")[0]
        body = await api.post(f"mutation({decl}) {{ {mutation} {{ errors {{ code field }} }} }}",
                              variables, token=tenant.token)
        assert "errors" not in body, body
        [error] = body["data"][name]["errors"]
        assert error["code"] == "INVALID_STATE", (name, body)
    schedule = await api.post("""mutation($a: ID!, $s: DateTime!, $e: DateTime!) {
        scheduleInterview(input: {applicationId: $a, startsAt: $s, endsAt: $e}) {
        errors { code field } } }""", {"a": to_global_id("Application", nina_app.id),
                                       "s": start.isoformat(),
                                       "e": (start + timedelta(hours=1)).isoformat()},
                              token=tenant.token)
    assert schedule["data"]["scheduleInterview"]["errors"] == [
        {"code": "INVALID_STATE", "field": ["input", "applicationId"]}]
    assert len(sink.received) == 2


async def test_with_a_rejection_email_erasure_waits_for_both_mails(
        api: Any, tenant: Any, sink: Any, run_worker: Any) -> None:
    from core.models import EmailTemplate
    from core.models.enums import TemplateKind

    nina, app = await _candidate(tenant, "nina@example.org", "Nina")
    invited = await _interview(tenant, app, 2, invite=True)
    await run_worker()
    await sink.wait_for(1)
    reason = await RejectionReason.create(company_id=tenant.company.id, label="Filled")
    template = await EmailTemplate.create(company_id=tenant.company.id, name="No",
                                          kind=TemplateKind.REJECTION, subject="Your application",
                                          body="Dear {{ candidate.first_name }}, no.")
    out = (await api.gql(tenant, REJECT, input={
        "applicationIds": [to_global_id("Application", app.id)],
        "reasonId": to_global_id("RejectionReason", reason.id), "anonymize": True,
        "sendEmail": True, "templateId": to_global_id("EmailTemplate", template.id),
    }))["rejectApplications"]
    assert out["errors"] == []
    assert (await Candidate.get(id=nina.id)).anonymized_at is None
    await run_worker()
    mails = await sink.wait_for(3)
    kinds = sorted(_calendar(m)[0] if m.message.get_content_type() != "text/plain"
                   and any(p.get_content_type() == "text/calendar" for p in m.message.walk())
                   else "mail" for m in mails[1:])
    assert kinds == ["CANCEL", "mail"]
    assert all(m.rcpt_tos == ["nina@example.org"] for m in mails[1:])
    assert (await Candidate.get(id=nina.id)).anonymized_at is not None
    assert (await Interview.get(id=invited.id)).cancelled
