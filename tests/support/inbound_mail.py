"""The mails the inbound gateway tests send and what they watch: calendar answers (from
the real-client corpus or built), delivery status reports, the company's events, and an
interview's untouched answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from core import events
from core.models import Interview
from core.models.enums import AttendeeResponse
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


async def _unchanged(inv: Any) -> None:
    iv = await Interview.get(id=inv.interview.id)
    assert iv.candidate_response == AttendeeResponse.NEEDS_ACTION
    assert iv.candidate_responded_at is None and iv.candidate_comment is None


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
