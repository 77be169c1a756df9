"""Interview invitations end to end at the service level: REQUEST, update, CANCEL."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar

from core.models import Application, Candidate, Interview, Position
from core.models.enums import AttendeeResponse, MessageKind
from core.services import interviews


async def _setup(tenant, language="nl", tz="Europe/Amsterdam"):
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="de Vries", email="nina@example.org",
                                  language=language, timezone=tz)
    pos = await Position.create(company_id=tenant.company.id, title="Backend Engineer")
    app = await Application.create(company_id=tenant.company.id, candidate=cand, position=pos)
    return cand, app


def _calendar(mail) -> tuple[str, icalendar.Calendar]:
    parts = [p for p in mail.message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    method = parts[0].get_param("method")
    raw = parts[0].get_content()
    return method, icalendar.Calendar.from_ical(raw)


async def test_invitation_update_cancel(tenant, sink, run_worker):
    _cand, app = await _setup(tenant)
    iv = await interviews.schedule_interview(
        employee=tenant.employee, application_id=app.id,
        starts_at=datetime(2027, 12, 14, 13, 0, tzinfo=UTC),
        ends_at=datetime(2027, 12, 14, 14, 0, tzinfo=UTC),
        timezone="Europe/Amsterdam", video_link="https://meet.example/abc")
    msg = await interviews.send_invitation(
        employee=tenant.employee, interview_id=iv.id,
        subject="Uitnodiging {{ position.title }}",
        body="Beste {{ candidate.first_name }}, tot {{ interview.date }} om "
             "{{ interview.start_time }}: {{ interview.video_link }}")
    assert msg.kind == MessageKind.INTERVIEW_INVITATION
    assert "dinsdag 14 december 2027" in msg.body and "14:00" in msg.body
    await run_worker()
    [mail] = await sink.wait_for(1)
    method, cal = _calendar(mail)
    assert method == "REQUEST"
    assert str(cal["METHOD"]) == "REQUEST"
    [ev] = cal.walk("VEVENT")
    assert str(ev["UID"]) == iv.uid and int(ev["SEQUENCE"]) == 0
    att = ev["ATTENDEE"]
    assert str(att).lower() == "mailto:nina@example.org"
    assert att.params["RSVP"] == "TRUE" and att.params["PARTSTAT"] == "NEEDS-ACTION"
    assert str(ev["ORGANIZER"]).lower().startswith("mailto:i-")
    assert any(p.get_filename() and p.get_filename().endswith(".ics") for p in mail.message.walk())

    await Interview.filter(id=iv.id).update(candidate_response=AttendeeResponse.ACCEPTED)
    _iv2, update = await interviews.reschedule_interview(
        employee=tenant.employee, interview_id=iv.id,
        starts_at=datetime(2027, 12, 15, 9, 0, tzinfo=UTC),
        ends_at=datetime(2027, 12, 15, 10, 0, tzinfo=UTC))
    assert update is not None and update.kind == MessageKind.INTERVIEW_UPDATE
    await iv.refresh_from_db()
    assert iv.sequence == 1 and iv.candidate_response == AttendeeResponse.NEEDS_ACTION
    await run_worker()
    mails = await sink.wait_for(2)
    method, cal = _calendar(mails[1])
    [ev] = cal.walk("VEVENT")
    assert method == "REQUEST" and str(ev["UID"]) == iv.uid and int(ev["SEQUENCE"]) == 1

    _, cancel = await interviews.cancel_interview(employee=tenant.employee, interview_id=iv.id)
    assert cancel is not None
    await run_worker()
    mails = await sink.wait_for(3)
    method, cal = _calendar(mails[2])
    [ev] = cal.walk("VEVENT")
    assert method == "CANCEL" and str(cal["METHOD"]) == "CANCEL"
    assert str(ev["UID"]) == iv.uid and int(ev["SEQUENCE"]) == 2


async def test_no_update_before_any_invitation(tenant, sink):
    _cand, app = await _setup(tenant, "en", "America/New_York")
    iv = await interviews.schedule_interview(
        employee=tenant.employee, application_id=app.id,
        starts_at=datetime(2027, 12, 14, 13, 0, tzinfo=UTC),
        ends_at=datetime(2027, 12, 14, 14, 0, tzinfo=UTC))
    _, msg = await interviews.reschedule_interview(
        employee=tenant.employee, interview_id=iv.id,
        starts_at=datetime(2027, 12, 14, 15, 0, tzinfo=UTC),
        ends_at=datetime(2027, 12, 14, 16, 0, tzinfo=UTC))
    assert msg is None
    await iv.refresh_from_db()
    assert iv.sequence == 0 and iv.timezone == "America/New_York"
    _, msg = await interviews.cancel_interview(employee=tenant.employee, interview_id=iv.id)
    assert msg is None
