"""Interview times a user would call a typo are refused with INVALID_INPUT on the field,
before anything is written or sent: the end not after the start, longer than 24 hours, a
start more than a day in the past or more than two years ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.ids import to_global_id
from core.models import Application, Candidate, Interview, Message, Position

SCHEDULE = """mutation($input: ScheduleInterviewInput!) { scheduleInterview(input: $input) {
  interview { id } errors { code field message } } }"""
RESCHEDULE = """mutation($input: RescheduleInterviewInput!) { rescheduleInterview(input: $input) {
  interview { id startsAt } errors { code field message } } }"""


async def _application(tenant: Any) -> str:
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="Smit", email="nina@example.org")
    pos = await Position.create(company_id=tenant.company.id, title="Engineer")
    app = await Application.create(company_id=tenant.company.id, candidate=cand, position=pos)
    return to_global_id("Application", app.id)


def _iso(at: datetime) -> str:
    return at.isoformat()


async def test_times_out_of_range_are_refused(api: Any, tenant: Any) -> None:
    app = await _application(tenant)
    now = datetime.now(UTC)
    soon = now + timedelta(days=2)
    cases = [
        (datetime(1, 1, 1, 9, tzinfo=UTC), datetime(1, 1, 1, 10, tzinfo=UTC), "startsAt"),
        (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, 1, tzinfo=UTC), "startsAt"),
        (now - timedelta(days=1, hours=1), now - timedelta(days=1), "startsAt"),
        (now + timedelta(days=2 * 366 + 2), now + timedelta(days=2 * 366 + 2, hours=1), "startsAt"),
        (soon, soon + timedelta(days=3650), "endsAt"),
        (soon, soon + timedelta(hours=24, seconds=1), "endsAt"),
        (soon, soon, "endsAt"),
        (soon, soon - timedelta(hours=1), "endsAt"),
    ]
    for starts, ends, field in cases:
        out = (await api.gql(tenant, SCHEDULE, input={
            "applicationId": app, "startsAt": _iso(starts), "endsAt": _iso(ends)}))["scheduleInterview"]
        assert out["interview"] is None, (starts, ends)
        assert [(e["code"], e["field"]) for e in out["errors"]] == [
            ("INVALID_INPUT", ["input", field])], (starts, ends, out)
    assert await Interview.all().count() == 0

    # The edges are fine: a late entry for an interview that began an hour ago, a 24 h
    # assessment day, a start a little under two years ahead.
    for starts, ends in ((now - timedelta(hours=1), now),
                         (soon, soon + timedelta(hours=24)),
                         (now + timedelta(days=700), now + timedelta(days=700, hours=1))):
        out = (await api.gql(tenant, SCHEDULE, input={
            "applicationId": app, "startsAt": _iso(starts), "endsAt": _iso(ends)}))["scheduleInterview"]
        assert out["errors"] == [], out
    iv = out["interview"]["id"]

    out = (await api.gql(tenant, RESCHEDULE, input={
        "interviewId": iv, "startsAt": _iso(datetime(1970, 1, 1, tzinfo=UTC)),
        "endsAt": _iso(datetime(1970, 1, 1, 1, tzinfo=UTC))}))["rescheduleInterview"]
    assert [(e["code"], e["field"]) for e in out["errors"]] == [
        ("INVALID_INPUT", ["input", "startsAt"])]
    out = (await api.gql(tenant, RESCHEDULE, input={
        "interviewId": iv, "startsAt": _iso(soon), "endsAt": _iso(soon + timedelta(days=3650))})
    )["rescheduleInterview"]
    assert [(e["code"], e["field"]) for e in out["errors"]] == [("INVALID_INPUT", ["input", "endsAt"])]
    assert await Message.all().count() == 0
