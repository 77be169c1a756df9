"""The inbound gateway end to end: real aiosmtpd server on the test loop, real SMTP client
(aiosmtplib), real database (SQLite and PostgreSQL) and Redis for events.

Calendar answers are built from the real-client corpus (tests/data/imip): the
interview gets the corpus file's UID and the candidate its ATTENDEE address, or the
file's UID/attendee are replaced by the interview's where the encoding allows it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from core import events
from core.models import InboundEmail, Interview, Message, MessageEvent
from core.models.enums import AttendeeResponse, InboundOutcome, MessageDirection, MessageStatus
from core.security import signed_address
from tests.support.inbound import make_interview, smtp_send
from tests.support.paths import CORPUS


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def reply_ics(uid: str, attendee: str, partstat: str = "ACCEPTED", *, sequence: int = 0,
              comment: str | None = None, method: str = "REPLY") -> str:
    lines = [
        "BEGIN:VCALENDAR", "PRODID:-//Test//EN", "VERSION:2.0", f"METHOD:{method}",
        "BEGIN:VEVENT", f"UID:{uid}", f"SEQUENCE:{sequence}", "DTSTAMP:20260105T100000Z",
        "DTSTART:20260110T100000Z", "DTEND:20260110T110000Z",
        f"ATTENDEE;PARTSTAT={partstat};CN=Nina:mailto:{attendee}",
    ]
    if comment:
        lines.append(f"COMMENT:{comment}")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def calendar_mail(ics: str, *, method: str = "REPLY", sender: str = "nina@example.org",
                  subject: str = "Accepted: Interview") -> bytes:
    em = EmailMessage()
    em["From"] = f"Nina <{sender}>"
    em["To"] = "organizer@example.org"
    em["Subject"] = subject
    em["Message-ID"] = make_msgid(domain="example.org")
    em.set_content("Nina has answered the invitation.")
    em.add_alternative(ics, subtype="calendar", params={"method": method})
    return em.as_bytes()


@contextlib.asynccontextmanager
async def watch(company_id: Any) -> AsyncIterator[list[dict[str, Any]]]:
    """Collect the company's events while the block runs (subscribed before it starts)."""
    from core.redis import get_redis

    seen: list[dict[str, Any]] = []
    stream = events.subscribe(company_id)
    ready = asyncio.Event()

    async def consume() -> None:
        async for ev in stream:
            seen.append(ev)

    task = asyncio.create_task(consume())
    channel = events.company_channel(company_id)
    for _ in range(200):  # wait until the SUBSCRIBE reached Redis
        numsub = await get_redis().pubsub_numsub(channel)
        if numsub and numsub[0][1] > 0:
            ready.set()
            break
        await asyncio.sleep(0.01)
    assert ready.is_set(), "subscription never registered"
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for_events(seen: list[dict[str, Any]], kind: str, count: int = 1) -> list[dict]:
    for _ in range(300):
        got = [e for e in seen if e["type"] == kind]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} {kind} events, saw {seen}")


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


# ------------------------------------------------------------------------------ calendar answers


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


async def _unchanged(inv: Any) -> None:
    iv = await Interview.get(id=inv.interview.id)
    assert iv.candidate_response == AttendeeResponse.NEEDS_ACTION
    assert iv.candidate_responded_at is None and iv.candidate_comment is None


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


# ------------------------------------------------------------------------------ replies


def candidate_reply(inv: Any, *, attachment: bytes | None = None, filename: str = "cv.pdf",
                    html: bool = False, auto: bool = False) -> bytes:
    em = EmailMessage()
    em["From"] = "Nina de Vries <nina@example.org>"
    em["To"] = f"Ada Admin <{inv.reply_address}>"
    em["Subject"] = "Re: Invitation: Interview Backend Engineer"
    em["Message-ID"] = "<reply-1@example.org>"
    em["In-Reply-To"] = f"<{inv.invitation.rfc_message_id}>"
    if auto:
        em["Auto-Submitted"] = "auto-replied"
        del em["Subject"]
        em["Subject"] = "Automatic reply: Invitation"
    text = ("Thanks, I'll be there!\nNina\n\n"
            "On Mon, 5 Jan 2026 at 10:00, Ada Admin <recruiting@mail.test> wrote:\n"
            "> Join us\n> for an interview\n")
    em.set_content(text)
    if html:
        em.add_alternative("<p>Thanks, <b>I'll be there!</b></p><blockquote>Join us</blockquote>",
                           subtype="html")
    if attachment is not None:
        em.add_attachment(attachment, maintype="application", subtype="pdf", filename=filename)
    return em.as_bytes()


async def test_candidate_reply_with_attachment(gateway, tenant) -> None:
    from core.blobs import read_blob
    from core.services.inbound import QUOTE_MARKER, split_reply_body

    inv = await make_interview(tenant)
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 100
    async with watch(tenant.company.id) as seen:
        res = await smtp_send(gateway.port, candidate_reply(inv, attachment=pdf),
                              inv.reply_address, mail_from="nina@example.org")
        assert res.code == 250
        [ev] = await wait_for_events(seen, events.MESSAGE_STATUS)
    [msg] = await Message.filter(direction=MessageDirection.INBOUND).prefetch_related("attachments")
    assert msg.kind.value == "REPLY" and msg.status == MessageStatus.RECEIVED
    assert (msg.candidate_id, msg.application_id, msg.interview_id) == (
        inv.candidate.id, inv.application.id, inv.interview.id)
    assert (msg.from_name, msg.from_address) == ("Nina de Vries", "nina@example.org")
    assert msg.to_addrs == [inv.reply_address]
    assert msg.subject == "Re: Invitation: Interview Backend Engineer"
    assert msg.rfc_message_id == "reply-1@example.org"
    assert msg.in_reply_to == f"<{inv.invitation.rfc_message_id}>"
    assert msg.sender_id is None
    written, quoted = split_reply_body(msg.body)
    assert written == "Thanks, I'll be there!\nNina"
    assert quoted is not None and quoted.startswith("On Mon, 5 Jan 2026")
    assert "> Join us" in quoted and QUOTE_MARKER in msg.body
    [doc] = list(msg.attachments)
    assert doc.filename == "cv.pdf" and doc.content_type == "application/pdf"
    assert doc.candidate_id == inv.candidate.id and doc.company_id == tenant.company.id
    assert doc.size == len(pdf) and read_blob(doc.blob_key) == pdf
    assert [e.status for e in await MessageEvent.filter(message_id=msg.id)] == [
        MessageStatus.RECEIVED]
    assert ev["message_id"] == str(msg.id) and ev["status"] == "RECEIVED"
    assert ev["candidate_id"] == str(inv.candidate.id)
    [copy] = await InboundEmail.all()
    assert copy.outcome == InboundOutcome.REPLY and copy.message_id == msg.id
    assert copy.candidate_id == inv.candidate.id and copy.mail_from == "nina@example.org"
    # The same mail again (a sender retrying after a lost 250): one message only.
    res = await smtp_send(gateway.port, candidate_reply(inv, attachment=pdf), inv.reply_address)
    assert res.code == 250
    assert await Message.filter(direction=MessageDirection.INBOUND).count() == 1


async def test_oversized_attachment_is_skipped_with_a_note(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    huge = b"A" * (10 * 1024 * 1024 + 1)
    raw = candidate_reply(inv, attachment=huge, filename="portfolio.pdf")
    res = await smtp_send(gateway.port, raw, inv.reply_address)
    assert res.code == 250
    [msg] = await Message.filter(direction=MessageDirection.INBOUND).prefetch_related("attachments")
    assert list(msg.attachments) == []
    assert "[Attachment not stored: portfolio.pdf (10.0 MB) is larger than the 10 MB limit]" in msg.body
    [copy] = await InboundEmail.all()
    assert "attachment skipped" in copy.detail
    assert copy.truncated and len(bytes(copy.raw_mail)) == 1_000_000 and copy.size > 10_000_000


async def test_html_only_reply_and_auto_reply(gateway, tenant) -> None:
    inv = await make_interview(tenant)
    em = EmailMessage()
    em["From"] = "nina@example.org"
    em["Subject"] = "Re: hi"
    em.set_content("<div>Sounds <i>great</i>&nbsp;&amp; thanks<br>Nina</div>"
                   "<div class='gmail_quote'>On Mon, Ada wrote:<blockquote>old</blockquote></div>",
                   subtype="html")
    assert (await smtp_send(gateway.port, em.as_bytes(), inv.reply_address)).code == 250
    auto = candidate_reply(inv, auto=True).replace(b"reply-1@", b"auto-1@")
    assert (await smtp_send(gateway.port, auto, inv.reply_address)).code == 250
    msgs = await Message.filter(direction=MessageDirection.INBOUND).order_by("created_at")
    assert len(msgs) == 2
    assert msgs[0].body == ("Sounds great & thanks\nNina\n\n-------- quoted history --------\n"
                            "On Mon, Ada wrote:\n> old")
    assert msgs[0].rfc_message_id.endswith("@in.mail.test")  # generated: the mail had none
    copies = {c.message_id: c for c in await InboundEmail.all()}
    assert "automatic reply" in copies[msgs[1].id].detail
    assert "automatic reply" not in copies[msgs[0].id].detail
    assert msgs[1].status == MessageStatus.RECEIVED  # never a bounce
    await inv.invitation.refresh_from_db()
    assert inv.invitation.status == MessageStatus.SENT


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


def dsn(original: bytes, recipient: str, *, status: str = "5.1.1", action: str = "failed",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
        headers_only: bool = False) -> bytes:
    boundary = "dsn-boundary-42"
    returned_type = "text/rfc822-headers" if headers_only else "message/rfc822"
    returned = original.split(b"\r\n\r\n", 1)[0] + b"\r\n" if headers_only else original
    parts = [
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)",
        "To: bounces@in.mail.test",
        "Subject: Undelivered Mail Returned to Sender",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain",
        "",
        "I'm sorry to have to inform you that your message could not be delivered.",
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.org",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        f"Action: {action}",
        f"Status: {status}",
        "Remote-MTA: dns; mail.example.org",
        f"Diagnostic-Code: {diagnostic.format(r=recipient)}",
        "",
        f"--{boundary}",
        f"Content-Type: {returned_type}",
        "",
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    return "\r\n".join(parts).encode() + b"\r\n" + returned + tail


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
