"""The inbound gateway's SMTP answers and the delivery reports it takes in, end to end:
RCPT and DATA codes (ours or not, too large, database down), bounces of our sent mails.
Real aiosmtpd server on the test loop, real SMTP client (aiosmtplib), real database
(SQLite and PostgreSQL) and Redis for events.

Calendar answers: test_inbound_calendar.py; candidates' replies: test_inbound_replies.py.
"""

from __future__ import annotations

from typing import Any

from core import events
from core.models import InboundEmail, Message, MessageEvent
from core.models.enums import AttendeeResponse, InboundOutcome, MessageDirection, MessageStatus
from core.security import signed_address
from tests.support.inbound import make_interview, smtp_send
from tests.support.inbound_mail import (
    _unchanged,
    calendar_mail,
    corpus,
    dsn,
    reply_ics,
    wait_for_events,
    watch,
)

# ------------------------------------------------------------------------------ SMTP codes


async def test_rcpt_codes(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    ok = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org"))
    other_domain = await smtp_send(gateway.port, ok, "someone@example.com")
    assert other_domain.rcpt_codes == {"someone@example.com": 550}
    good = inv.organizer_address
    local, _, domain = good.partition("@")
    forged = f"{local[:-1]}{'0' if local[-1] != '0' else '1'}@{domain}"
    assert (await smtp_send(gateway.port, ok, forged)).code == 550
    assert (await smtp_send(gateway.port, ok, f"postmaster@{domain}")).code == 550
    import uuid

    gone = signed_address("i", uuid.uuid4())  # validly signed, but no such interview
    assert (await smtp_send(gateway.port, ok, gone)).code == 550
    assert await InboundEmail.all().count() == 0
    # Upper-case domain and local part are still ours.
    res = await smtp_send(gateway.port, ok, good.upper())
    assert res.code == 250
    await inv.interview.refresh_from_db()
    assert inv.interview.candidate_response == AttendeeResponse.ACCEPTED


async def test_oversize_data_gets_552(gateway, tenant, monkeypatch) -> None:
    inv = await make_interview(tenant)
    big = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org"))
    big = big.replace(b"Nina has answered", b"x" * 100 + b"\r\n" + (b"y" * 900 + b"\r\n") * 200)
    gateway.server.close()
    await gateway.wait_closed()
    from core.settings import reset_settings
    from inbound.server import start_server

    monkeypatch.setenv("RECRUITMAIL_INBOUND_MAX_BYTES", "50000")
    reset_settings()
    small = await start_server("127.0.0.1", 0)
    try:
        res = await smtp_send(small.port, big, inv.organizer_address)
        assert res.data_code == 552
        ok = await smtp_send(small.port, calendar_mail(reply_ics(inv.interview.uid,
                                                                 "nina@example.org")),
                             inv.organizer_address)
        assert ok.code == 250
    finally:
        small.close()
        await small.wait_closed()
    assert await InboundEmail.all().count() == 1


async def test_database_fault_gets_451_then_retry_works(gateway, tenant, monkeypatch) -> None:
    from core.services import inbound as service

    inv = await make_interview(tenant)
    raw = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org", "DECLINED"))
    real = service.store_inbound_copy

    async def broken(**kwargs: Any) -> Any:
        raise ConnectionError("database went away")

    monkeypatch.setattr(service, "store_inbound_copy", broken)
    res = await smtp_send(gateway.port, raw, inv.organizer_address)
    assert res.code == 451
    await inv.interview.refresh_from_db()
    assert inv.interview.candidate_response == AttendeeResponse.NEEDS_ACTION  # rolled back
    monkeypatch.setattr(service, "store_inbound_copy", real)
    res = await smtp_send(gateway.port, raw, inv.organizer_address)
    assert res.code == 250
    await inv.interview.refresh_from_db()
    assert inv.interview.candidate_response == AttendeeResponse.DECLINED


async def test_rcpt_check_with_database_down_gets_451(gateway, tenant, monkeypatch) -> None:
    from inbound import handler

    inv = await make_interview(tenant)

    async def down(route: Any) -> bool:
        raise OSError("connection refused")

    monkeypatch.setattr(handler, "target_exists", down)
    res = await smtp_send(gateway.port, b"Subject: x\r\n\r\nhi\r\n", inv.reply_address)
    assert res.rcpt_codes == {inv.reply_address: 451}


async def test_several_recipients_in_one_transaction(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    raw = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org", "ACCEPTED"))
    res = await smtp_send(gateway.port, raw, [inv.organizer_address, "x@elsewhere.example",
                                              inv.reply_address])
    assert res.rcpt_codes[inv.organizer_address] == 250
    assert res.rcpt_codes["x@elsewhere.example"] == 550
    assert res.code == 250
    copies = await InboundEmail.all()
    assert sorted(c.rcpt_to[0] for c in copies) == sorted([inv.organizer_address,
                                                           inv.reply_address])
    assert {c.outcome for c in copies} == {InboundOutcome.CALENDAR_REPLY}


# ------------------------------------------------------------------------------ bounces


async def test_bounce_of_a_sent_message(gateway, tenant, sink, run_worker) -> None:
    from core.models import Candidate
    from core.services import messaging

    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  email="nina@example.org")
    msg = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                       subject="Hello", body="Hi Nina")
    await run_worker()
    [mail] = await sink.wait_for(1)
    await msg.refresh_from_db()
    assert msg.status == MessageStatus.SENT
    report = dsn(mail.data, "nina@example.org")
    async with watch(tenant.company.id) as seen:
        res = await smtp_send(gateway.port, report, mail.mail_from, mail_from="")
        assert res.code == 250
        [ev] = await wait_for_events(seen, events.MESSAGE_STATUS)
    await msg.refresh_from_db()
    assert msg.status == MessageStatus.BOUNCED
    assert "nina@example.org" in msg.error
    assert "the mailbox does not exist" in msg.error and "5.1.1" in msg.error
    assert "User unknown" in msg.error
    assert ev["status"] == "BOUNCED" and ev["previous"] == "SENT"
    history = [e.status for e in await MessageEvent.filter(message_id=msg.id).order_by("id")]
    assert history[-1] == MessageStatus.BOUNCED
    [copy] = await InboundEmail.all()
    assert copy.outcome == InboundOutcome.BOUNCE and copy.message_id == msg.id
    assert copy.mail_from == "<>"  # the null sender of a DSN
    # A second copy of the same report: nothing new happens.
    assert (await smtp_send(gateway.port, report, mail.mail_from, mail_from="")).code == 250
    assert (await MessageEvent.filter(message_id=msg.id).count()) == len(history)


async def test_delay_report_and_cc_failure_do_not_bounce(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    original = b"Message-ID: <%s>\r\nSubject: x\r\n\r\nbody\r\n" % inv.invitation.rfc_message_id.encode()
    delayed = dsn(original, "nina@example.org", status="4.4.1", action="delayed",
                  diagnostic="smtp; 451 4.4.1 try later")
    assert (await smtp_send(gateway.port, delayed, inv.bounce_address, mail_from="")).code == 250
    cc_failed = dsn(original, "boss@acme.example")
    assert (await smtp_send(gateway.port, cc_failed, inv.bounce_address, mail_from="")).code == 250
    await inv.invitation.refresh_from_db()
    assert inv.invitation.status == MessageStatus.SENT
    details = sorted(c.detail for c in await InboundEmail.all())
    assert any("delayed" in d for d in details) and any("only a copy failed" in d for d in details)


async def test_dsn_quoting_the_invitation_is_never_a_reply(gateway, tenant) -> None:
    """The corpus DSN returns an invitation (METHOD:REQUEST): at the organizer address it
    must not answer the interview; matched by the returned Message-ID it bounces the
    invitation."""
    raw = corpus("other/dsn-bounce-of-calendarserver-request.eml")
    inv = await make_interview(tenant, email="nonexistant@example.com")
    assert (await smtp_send(gateway.port, raw, inv.organizer_address, mail_from="")).code == 250
    await _unchanged(inv)
    [copy] = await InboundEmail.all()
    assert copy.outcome == InboundOutcome.IGNORED and "names none" in copy.detail
    # Same report, now returning our invitation's Message-ID: the invitation bounces.
    ours = raw.replace(b"20080812191939.51369.1538816694.0@plugh.example.com",
                       inv.invitation.rfc_message_id.encode())
    assert (await smtp_send(gateway.port, ours, inv.reply_address, mail_from="")).code == 250
    await _unchanged(inv)
    await inv.invitation.refresh_from_db()
    assert inv.invitation.status == MessageStatus.BOUNCED
    assert "unknown or illegal alias" in inv.invitation.error
    assert await Message.filter(direction=MessageDirection.INBOUND).count() == 0


async def test_dsn_for_another_company_message_is_ignored(gateway, tenant, other_tenant) -> None:
    mine = await make_interview(tenant)
    theirs = await make_interview(other_tenant)
    original = b"Message-ID: <%s>\r\n\r\nx\r\n" % theirs.invitation.rfc_message_id.encode()
    raw = dsn(original, "nina@example.org", headers_only=True)
    assert (await smtp_send(gateway.port, raw, mine.reply_address, mail_from="")).code == 250
    await theirs.invitation.refresh_from_db()
    await mine.invitation.refresh_from_db()
    assert theirs.invitation.status == MessageStatus.SENT
    assert mine.invitation.status == MessageStatus.SENT
