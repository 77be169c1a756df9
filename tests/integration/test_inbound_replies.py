"""Candidates' replies through the inbound gateway, end to end: threaded in as messages
with their attachments (too large ones skipped with a note), HTML-only and automatic
replies. Real aiosmtpd server on the test loop, real SMTP client (aiosmtplib), real
database (SQLite and PostgreSQL) and Redis for events."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from core import events
from core.models import InboundEmail, Message, MessageEvent
from core.models.enums import InboundOutcome, MessageDirection, MessageStatus
from tests.support.inbound import make_interview, smtp_send
from tests.support.inbound_mail import wait_for_events, watch


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
