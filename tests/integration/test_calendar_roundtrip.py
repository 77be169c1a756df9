"""The whole loop: an invitation sent by the service through GraphQL, the candidate's
calendar client answering the ORGANIZER address found in that invitation (Outlook/Exchange
and Google shapes), the real gateway recording it, GraphQL showing it, a subscriber seeing
it; then a reschedule, an answer to the old SEQUENCE ignored, the new one recorded."""

from __future__ import annotations

import base64
import re

import icalendar

from core.events import company_channel
from tests.support.api import WsClient, wait_for_subscribers
from tests.support.inbound import smtp_send

SETUP = """mutation($c: CreateCandidateInput!) { createCandidate(input: $c) { candidate { id } } }"""
POSITION = """mutation { createPosition(input: {title: "Backend Engineer"}) { position { id } } }"""
APPLY = """mutation($c: ID!, $p: ID!) { createApplication(input: {candidateId: $c, positionId: $p})
  { application { id } } }"""
SCHEDULE = """mutation($a: ID!) { scheduleInterview(input: {applicationId: $a,
  startsAt: "2027-12-14T13:00:00Z", endsAt: "2027-12-14T14:00:00Z", timezone: "Europe/Amsterdam",
  videoLink: "https://meet.example/abc"}) { interview { id } errors { code } } }"""
INVITE = """mutation($i: ID!) { sendInterviewInvitation(input: {interviewId: $i,
  subject: "Interview {{ position.title }}", body: "Dear {{ candidate.first_name }}, see you."})
  { message { id } errors { code message } } }"""
RESCHEDULE = """mutation($i: ID!) { rescheduleInterview(input: {interviewId: $i,
  startsAt: "2027-12-15T09:00:00Z", endsAt: "2027-12-15T10:00:00Z"})
  { interview { sequence candidateResponse } message { id } errors { code } } }"""
STATE = """query($i: ID!) { interview(id: $i) { candidateResponse candidateComment sequence } }"""


def _calendar(mail) -> icalendar.Calendar:
    [part] = [p for p in mail.message.walk() if p.get_content_type() == "text/calendar"]
    return icalendar.Calendar.from_ical(part.get_content())


def outlook_reply(uid: str, sequence: int, attendee: str, partstat: str, comment: str) -> bytes:
    """Exchange's shape: no ORGANIZER, MAILTO: in capitals, base64 text/calendar."""
    ics = ("BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nPRODID:Microsoft Exchange Server 2010\r\n"
           "VERSION:2.0\r\nBEGIN:VEVENT\r\n"
           f"ATTENDEE;PARTSTAT={partstat}:MAILTO:{attendee.upper()}\r\n"
           f"COMMENT;LANGUAGE=de-DE:{comment}\r\n"
           f"UID:{uid}\r\nSEQUENCE:{sequence}\r\nDTSTAMP:20261201T100000Z\r\n"
           "DTSTART:20271214T130000Z\r\nDTEND:20271214T140000Z\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    body = base64.encodebytes(ics.encode()).decode()
    return ("From: Nina <nina@example.org>\r\nTo: organizer\r\nSubject: Accepted: Interview\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAccepted\r\n"
            "--b1\r\nContent-Type: text/calendar; charset=\"utf-8\"; method=REPLY\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b1--\r\n").encode()


def google_reply(uid: str, sequence: int, attendee: str, organizer: str, partstat: str) -> bytes:
    """Google's shape: folded lines (even mid-word), X-RESPONSE-COMMENT, ORGANIZER present."""
    lines = ["BEGIN:VCALENDAR", "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
             "VERSION:2.0", "CALSCALE:GREGORIAN", "METHOD:REPLY", "BEGIN:VEVENT",
             f"ORGANIZER;CN=Ada Admin:mailto:{organizer}",
             f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat};CN=Nina T"
             f"ester;X-NUM-GUESTS=0;X-RESPONSE-COMMENT=Can we do later?:mailto:{attendee}",
             f"UID:{uid}", f"SEQUENCE:{sequence}", "DTSTAMP:20261201T100000Z",
             "END:VEVENT", "END:VCALENDAR"]
    folded = []
    for line in lines:
        while len(line) > 60:
            folded.append(line[:60])
            line = " " + line[60:]
        folded.append(line)
    ics = "\r\n".join(folded) + "\r\n"
    return ("From: Nina <nina@example.org>\r\nSubject: Tentative: Interview\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"g\"\r\n\r\n--g\r\n"
            "Content-Type: text/calendar; charset=\"UTF-8\"; method=REPLY\r\n\r\n"
            f"{ics}\r\n--g\r\nContent-Type: application/ics; name=\"invite.ics\"\r\n"
            "Content-Disposition: attachment; filename=\"invite.ics\"\r\n\r\n"
            f"{ics}\r\n--g--\r\n").encode()


async def test_invitation_answered_by_calendar_clients(api, live_server, tenant, sink,
                                                       run_worker, gateway):
    cid = (await api.gql(tenant, SETUP, c={"firstName": "Nina", "lastName": "Tester",
                                           "email": "Nina@Example.org", "language": "nl",
                                           "timezone": "Europe/Amsterdam"}))
    cid = cid["createCandidate"]["candidate"]["id"]
    pid = (await api.gql(tenant, POSITION))["createPosition"]["position"]["id"]
    aid = (await api.gql(tenant, APPLY, c=cid, p=pid))["createApplication"]["application"]["id"]
    iid = (await api.gql(tenant, SCHEDULE, a=aid))["scheduleInterview"]["interview"]["id"]
    sent = await api.gql(tenant, INVITE, i=iid)
    assert sent["sendInterviewInvitation"]["errors"] == []
    await run_worker()
    [mail] = await sink.wait_for(1)
    [event] = _calendar(mail).walk("VEVENT")
    uid, organizer = str(event["UID"]), str(event["ORGANIZER"])[len("mailto:"):]
    assert re.fullmatch(r"i-[0-9a-f]{32}-[0-9a-f]{16}@in\.mail\.test", organizer)

    ws = await WsClient.connect(live_server.ws_url, {"Authorization": f"Bearer {tenant.token}"})
    await ws.ack()
    try:
        op = await ws.subscribe("subscription($i: ID) { interviewResponseChanged(interviewId: $i)"
                                " { response comment } }", {"i": iid})
        await wait_for_subscribers(company_channel(tenant.company.id), 1)

        # Outlook accepts (attendee in capitals, no ORGANIZER) ...
        d = await smtp_send(gateway.port, outlook_reply(uid, 0, "nina@example.org", "ACCEPTED",
                                                        "Gerne\\, bis dann"), organizer)
        assert d.code == 250
        state = (await api.gql(tenant, STATE, i=iid))["interview"]
        assert (state["candidateResponse"], state["candidateComment"]) == ("ACCEPTED",
                                                                          "Gerne, bis dann")
        change = await ws.next_data(op)
        assert change["interviewResponseChanged"] == {"response": "ACCEPTED",
                                                      "comment": "Gerne, bis dann"}

        # ... a forged organizer address changes nothing ...
        forged = organizer[:-20] + "0" * 16 + "@in.mail.test"
        d = await smtp_send(gateway.port, outlook_reply(uid, 0, "nina@example.org", "DECLINED",
                                                        "x"), forged)
        assert d.code == 550
        # ... someone else answering for the candidate changes nothing ...
        d = await smtp_send(gateway.port, outlook_reply(uid, 0, "mallory@example.org",
                                                        "DECLINED", "x"), organizer)
        assert d.code == 250
        assert (await api.gql(tenant, STATE, i=iid))["interview"]["candidateResponse"] == "ACCEPTED"

        # The recruiter moves the interview: SEQUENCE 1, the answer back to NEEDS_ACTION.
        moved = (await api.gql(tenant, RESCHEDULE, i=iid))["rescheduleInterview"]
        assert moved["interview"] == {"sequence": 1, "candidateResponse": "NEEDS_ACTION"}
        await run_worker()
        mails = await sink.wait_for(2)
        [update] = _calendar(mails[1]).walk("VEVENT")
        assert str(update["UID"]) == uid and int(update["SEQUENCE"]) == 1

        # A late answer to the old time is ignored; Google's answer to the new one counts.
        d = await smtp_send(gateway.port, outlook_reply(uid, 0, "nina@example.org", "DECLINED",
                                                        "old"), organizer)
        assert d.code == 250
        assert (await api.gql(tenant, STATE, i=iid))["interview"]["candidateResponse"] == \
            "NEEDS_ACTION"
        d = await smtp_send(gateway.port, google_reply(uid, 1, "nina@example.org", organizer,
                                                       "TENTATIVE"), organizer)
        assert d.code == 250
        state = (await api.gql(tenant, STATE, i=iid))["interview"]
        assert (state["candidateResponse"], state["candidateComment"]) == ("TENTATIVE",
                                                                          "Can we do later?")
        change = await ws.next_data(op)
        assert change["interviewResponseChanged"]["response"] == "TENTATIVE"
    finally:
        await ws.close()
