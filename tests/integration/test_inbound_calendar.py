"""Calendar answers through the inbound gateway, end to end: real clients' REPLYs,
answers in sequence, forged or mismatched ones, cancelled interviews, COUNTER proposals.
Real aiosmtpd server on the test loop, real SMTP client (aiosmtplib), real database
(SQLite and PostgreSQL) and Redis for events.

Calendar answers are built from the real-client corpus (tests/data/imip): the
interview gets the corpus file's UID and the candidate its ATTENDEE address, or the
file's UID/attendee are replaced by the interview's where the encoding allows it.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from core import events
from core.models import InboundEmail, Interview, Message
from core.models.enums import AttendeeResponse, InboundOutcome, MessageDirection, MessageStatus
from tests.support.inbound import make_interview, smtp_send
from tests.support.inbound_mail import (
    _unchanged,
    calendar_mail,
    corpus,
    reply_ics,
    wait_for_events,
    watch,
)

CLIENTS = {
    # Outlook/Exchange: no ORGANIZER, MAILTO: upper-case, base64 text/calendar.
    "outlook": ("outlook-exchange/reply-accepted-exchange2016-german-no-ORGANIZER-MAILTO-upper-base64"
                ".eml", "0e4a0959-e1c7-4c5a-b353-d7abbd8ca8ac", "markus.brechtel@uk-koeln.de",
                AttendeeResponse.ACCEPTED, None),
    "outlook-comment": ("outlook-exchange/reply-declined-exchange2016-german-COMMENT-escaped-comma.eml",
                        "abcfacd3-4db3-4c42-bcf5-0c17752c65fb", "markus.brechtel@uk-koeln.de",
                        AttendeeResponse.DECLINED, "no, sorry"),
    # Apple: attachment without method= param, quoted-printable with encoded CRLFs.
    "apple": ("apple/reply-accepted-ical3-applemail-qp-crlf-in-qp.eml",
              "1E71F9C8-AEDA-48EB-98D0-76E898F6BB5C", "xyzzy@example.com",
              AttendeeResponse.ACCEPTED, None),
    # Thunderbird/Lightning: the calendar twice, 8bit.
    "thunderbird": ("thunderbird/reply-declined-lightning-german-8BIT-ics-twice.eml",
                    "4f0162146d61cb2c06cbe2abf94636f4526abe16", "tine20admin@caldav.net",
                    AttendeeResponse.DECLINED, None),
}


def google_mail(uid: str, attendee: str) -> bytes:
    """Google Calendar's REPLY (corpus file) with its X-RESPONSE-COMMENT, folded, in a
    mail shaped like Google's (text/calendar inline + application/ics attachment)."""
    ics = corpus("google/reply-tentative-google-to-exchange-organizer.ics").decode()
    ics = ics.replace("cccc@nylas.com", uid).replace("test1@example.com", attendee)
    ics = ics.replace(
        "PARTSTAT=TENTATIVE;",
        'PARTSTAT=TENTATIVE;X-RESPONSE-COMMENT="Running late from my current j\r\n ob\\, '
        'can we start 15 min later?";',
    )
    em = EmailMessage()
    em["From"] = f"Nina de Vries <{attendee}>"
    em["To"] = "organizer@example.org"
    em["Subject"] = "Invitation: Interview - Tentatively accepted"
    em["Message-ID"] = make_msgid(domain="google.example")
    em.set_content("Nina de Vries has tentatively accepted this invitation.")
    em.add_alternative(ics, subtype="calendar", params={"method": "REPLY"})
    em.add_attachment(ics.encode(), maintype="application", subtype="ics", filename="invite.ics")
    return em.as_bytes()


@pytest.mark.parametrize("client", [*CLIENTS, "google"])
async def test_calendar_answer_from_real_clients(gateway, tenant, client) -> None:
    if client == "google":
        uid, attendee = "google-uid-123@mail.test", "Nina.deVries@Example.org"
        expected, comment = AttendeeResponse.TENTATIVE, (
            "Running late from my current job, can we start 15 min later?")
        raw = google_mail(uid, attendee.lower())
    else:
        name, uid, attendee, expected, comment = CLIENTS[client]
        raw = corpus(name)
    # The client answers the SEQUENCE it was sent (Apple's sample answers the 7th version).
    from core.mail.itip import classify_bytes

    sent = max((r.sequence or 0) for r in classify_bytes(raw).replies)
    inv = await make_interview(tenant, uid=uid, email=attendee, sequence=sent)
    async with watch(tenant.company.id) as seen:
        res = await smtp_send(gateway.port, raw, inv.organizer_address)
        assert res.code == 250, res
        [ev] = await wait_for_events(seen, events.INTERVIEW_RESPONSE)
    iv = await Interview.get(id=inv.interview.id)
    assert iv.candidate_response == expected
    assert iv.candidate_comment == comment
    assert iv.candidate_responded_at is not None
    assert ev["interview_id"] == str(iv.id)
    assert ev["response"] == expected.value
    assert ev["comment"] == comment
    [copy] = await InboundEmail.all()
    assert copy.outcome == InboundOutcome.CALENDAR_REPLY
    assert copy.interview_id == iv.id and copy.company_id == tenant.company.id
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert bytes(copy.raw_mail).rstrip(b"\r\n") == crlf.rstrip(b"\r\n")  # the mail as it came
    assert not copy.truncated and copy.size == len(bytes(copy.raw_mail))
    # No message was created for a calendar answer.
    assert await Message.filter(direction=MessageDirection.INBOUND).count() == 0


async def test_answers_in_sequence_each_published(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    uid = inv.interview.uid
    async with watch(tenant.company.id) as seen:
        for partstat, comment in (("TENTATIVE", None), ("ACCEPTED", "See you then"),
                                  ("DECLINED", "Sorry\\, I got another offer")):
            raw = calendar_mail(reply_ics(uid, "NINA@EXAMPLE.ORG", partstat, comment=comment))
            assert (await smtp_send(gateway.port, raw, inv.organizer_address)).code == 250
        got = await wait_for_events(seen, events.INTERVIEW_RESPONSE, 3)
    assert [e["response"] for e in got] == ["TENTATIVE", "ACCEPTED", "DECLINED"]
    assert got[2]["comment"] == "Sorry, I got another offer"
    iv = await Interview.get(id=inv.interview.id)
    assert iv.candidate_response == AttendeeResponse.DECLINED


async def test_calendar_reply_to_reply_address_counts(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    raw = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org", "ACCEPTED"))
    assert (await smtp_send(gateway.port, raw, inv.reply_address)).code == 250
    iv = await Interview.get(id=inv.interview.id)
    assert iv.candidate_response == AttendeeResponse.ACCEPTED
    assert await Message.filter(direction=MessageDirection.INBOUND).count() == 0


async def test_forged_and_mismatched_replies_change_nothing(gateway, tenant, other_tenant) -> None:
    inv = await make_interview(tenant, sequence=2)
    other = await make_interview(other_tenant, email="nina@example.org")
    sibling = await make_interview(tenant, email="nina@example.org")
    uid = inv.interview.uid
    cases = {
        "wrong attendee": reply_ics(uid, "mallory@example.org", "DECLINED", sequence=2),
        "other company's UID": reply_ics(other.interview.uid, "nina@example.org", "DECLINED",
                                         sequence=2),
        "other interview's UID": reply_ics(sibling.interview.uid, "nina@example.org", "DECLINED",
                                           sequence=2),
        "older SEQUENCE": reply_ics(uid, "nina@example.org", "DECLINED", sequence=1),
        "SEQUENCE never sent": reply_ics(uid, "nina@example.org", "DECLINED", sequence=3),
        "SEQUENCE far beyond": reply_ics(uid, "nina@example.org", "ACCEPTED",
                                         sequence=999999999999),
        "not an answer": reply_ics(uid, "nina@example.org", "DELEGATED", sequence=2),
    }
    async with watch(tenant.company.id) as seen:
        for why, ics in cases.items():
            # From claims to be the candidate: it must not matter.
            res = await smtp_send(gateway.port, calendar_mail(ics), inv.organizer_address)
            assert res.code == 250, why
        # Right content, but a forged signature: refused at RCPT.
        local, _, domain = inv.organizer_address.partition("@")
        forged = f"{local[:-4]}abcd@{domain}"
        ok = calendar_mail(reply_ics(uid, "nina@example.org", "DECLINED", sequence=2))
        assert (await smtp_send(gateway.port, ok, forged)).code == 550
        # The other company's organizer address with our UID: the other interview ignores it.
        res = await smtp_send(gateway.port, ok, other.organizer_address)
        assert res.code == 250
        await asyncio.sleep(0.2)
    await _unchanged(inv)
    await _unchanged(other)
    await _unchanged(sibling)
    assert [e for e in seen if e["type"] == events.INTERVIEW_RESPONSE] == []
    copies = await InboundEmail.filter(interview_id=inv.interview.id).order_by("received_at")
    assert len(copies) == len(cases)
    assert all(c.outcome == InboundOutcome.IGNORED for c in copies)
    details = " | ".join(c.detail for c in copies)
    for words in ("is not the candidate", "is not this interview's", "older invitation",
                  "DELEGATED", "never sent (SEQUENCE 3 > 2", "never sent (SEQUENCE 999999999999"):
        assert words in details
    # Same SEQUENCE as the interview is accepted.
    ok_res = await smtp_send(gateway.port, ok, inv.organizer_address)
    assert ok_res.code == 250
    assert (await Interview.get(id=inv.interview.id)).candidate_response == AttendeeResponse.DECLINED


async def test_cancelled_or_uninvited_interview_ignores_replies(gateway, tenant) -> None:
    cancelled = await make_interview(tenant, cancelled=True)
    uninvited = await make_interview(tenant, invitation_sent=False)
    for inv in (cancelled, uninvited):
        raw = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org"))
        assert (await smtp_send(gateway.port, raw, inv.organizer_address)).code == 250
        await _unchanged(inv)
    details = [c.detail for c in await InboundEmail.all()]
    assert any("cancelled" in d for d in details)
    assert any("no invitation" in d for d in details)


async def test_counter_becomes_a_reply_message(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    ics = reply_ics(inv.interview.uid, "nina@example.org", "NEEDS-ACTION", method="COUNTER",
                    comment="Could we do Friday instead?")
    ics = ics.replace("DTSTART:20260110T100000Z", "DTSTART;TZID=Europe/Amsterdam:20260116T140000")
    ics = ics.replace("DTEND:20260110T110000Z", "DTEND;TZID=Europe/Amsterdam:20260116T150000")
    async with watch(tenant.company.id) as seen:
        res = await smtp_send(gateway.port, calendar_mail(ics, method="COUNTER",
                                                          subject="New time proposed"),
                              inv.organizer_address)
        assert res.code == 250
        [ev] = await wait_for_events(seen, events.MESSAGE_STATUS)
    await _unchanged(inv)
    [msg] = await Message.filter(direction=MessageDirection.INBOUND)
    assert msg.kind.value == "REPLY" and msg.status == MessageStatus.RECEIVED
    assert msg.interview_id == inv.interview.id and msg.candidate_id == inv.candidate.id
    assert msg.subject == "New time proposed: Interview Backend Engineer"
    assert "2026-01-16 14:00 Europe/Amsterdam" in msg.body
    assert "Could we do Friday instead?" in msg.body
    assert ev["message_id"] == str(msg.id) and ev["status"] == "RECEIVED"
    [copy] = await InboundEmail.all()
    assert copy.outcome == InboundOutcome.COUNTER and copy.message_id == msg.id
