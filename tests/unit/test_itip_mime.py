"""core.mail.itip finding the calendar in a mail: transfer encodings, charsets, part types,
duplicate and forwarded parts, top-level calendars and EmailMessage input."""

from __future__ import annotations

import base64
import email
from email import policy
from email.message import EmailMessage

import pytest

from core.mail.itip import classify_bytes, classify_message, parse_calendar_bytes
from tests.support.itip_mail import ACCEPT, event, ics, mail


def test_base64_quoted_printable_and_broken_quoted_printable() -> None:
    b64 = base64.encodebytes(ACCEPT.encode())
    assert classify_bytes(mail(("text/calendar", "Base64", b64))).kind == "reply"
    qp = ACCEPT.replace("=", "=3D").replace("\r\n", "=0D=0A=\r\n").encode()
    assert classify_bytes(mail(("text/calendar", "quoted-printable", qp))).replies[0].partstat == (
        "ACCEPTED"
    )
    broken = mail(("text/calendar; charset=utf-8", "quoted-printable", ACCEPT.encode()))
    (reply,) = classify_bytes(broken).replies  # "=AC" of PARTSTAT=ACCEPTED must survive
    assert (reply.partstat, reply.attendee) == ("ACCEPTED", "beth@example.test")


def test_undeclared_8bit_charset_and_utf16() -> None:
    body = ics(*event("ATTENDEE;PARTSTAT=DECLINED:mailto:a@b.c", "COMMENT:Grüße, Jürgen"))
    for encoded in (body.encode("cp1252"), body.encode("utf-8")):
        result = classify_bytes(mail(("text/calendar; charset=x-unknown-foo", "8bit", encoded)))
        assert result.replies[0].comment == "Grüße, Jürgen"
    assert parse_calendar_bytes(body.encode("utf-16")).replies[0].comment == "Grüße, Jürgen"
    assert classify_bytes(b"\xef\xbb\xbf \r\n" + body.encode()).kind == "reply"


@pytest.mark.parametrize(
    "ctype",
    [
        'application/octet-stream; name="invite.ICS"',
        "application/octet-stream",
        "TeXt/X-vCalendar",
        "application/ics",
        'text/plain; name="reply.ics"',
    ],
)
def test_calendar_part_types(ctype: str) -> None:
    assert classify_bytes(mail((ctype, "base64", base64.encodebytes(ACCEPT.encode())))).kind == (
        "reply"
    )


def test_text_plain_body_is_not_sniffed_and_plain_mail_is_none() -> None:
    assert classify_bytes(mail(("text/plain", "", ACCEPT.encode()))).kind == "none"
    assert classify_bytes(b"From: a@b.c\r\nSubject: hi\r\n\r\nhello").kind == "none"


def test_duplicate_calendar_parts_give_one_reply() -> None:
    raw = mail(
        ("text/calendar; method=REPLY", "8bit", ACCEPT.encode()),
        ("application/ics; name=invite.ics", "base64", base64.encodebytes(ACCEPT.encode())),
        ("application/ics", "8bit", ACCEPT.replace("\r\n", "\n").encode()),
    )
    assert len(classify_bytes(raw).replies) == 1


def test_forwarded_invitation_and_reply_quoting_invitation() -> None:
    invite = ics(*event("ATTENDEE:mailto:a@b.c"), method="REQUEST").encode()
    inner = b"Subject: inv\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + invite
    assert classify_bytes(mail(("message/rfc822", "", inner))).kind == "request"
    both = mail(("message/rfc822", "", inner), ("text/calendar", "", ACCEPT.encode()))
    assert classify_bytes(both).kind == "reply"


def test_toplevel_text_calendar_and_email_message_input() -> None:
    raw = b"From: a@b.c\r\nContent-Type: text/calendar;\r\n\tmethod=REPLY\r\n\r\n" + ACCEPT.encode()
    assert classify_bytes(raw).kind == "reply"
    msg = EmailMessage()
    msg["From"] = "beth@example.test"
    msg.set_content("see attachment")
    msg.add_attachment(ACCEPT.encode(), maintype="text", subtype="calendar", filename="r.ics")
    assert classify_message(msg).replies[0].attendee == "beth@example.test"
    parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert classify_message(parsed).kind == "reply"
