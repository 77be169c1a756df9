"""core.mail.itip telling bounces from replies: delivery status reports quoting a reply,
read receipts, bounce heuristics, and ordinary replies that are not bounces."""

from __future__ import annotations

import email
from email import policy

import pytest

from core.mail.itip import classify_bytes, classify_message, is_delivery_status_notification
from tests.support.itip_mail import ACCEPT, mail


def _report(report_type: str, quoted: bytes, sender: str = "MAILER-DAEMON@mx.example") -> bytes:
    return mail(
        ("text/plain", "", b"Your message could not be delivered."),
        ("message/delivery-status" if report_type == "delivery-status" else "text/plain", "", b""),
        ("message/rfc822", "", b"Content-Type: text/calendar; method=REPLY\r\n\r\n" + quoted),
        headers=f"Return-Path: <>\r\nX-Sender-Hint: {sender}",
        top=f"multipart/report; report-type={report_type}",
    ).replace(b"From: Beth <beth@example.test>", f"From: {sender}".encode())


def test_dsn_quoting_a_reply_is_a_bounce() -> None:
    result = classify_bytes(_report("delivery-status", ACCEPT.encode()))
    assert (result.kind, result.method, result.replies) == ("bounce", None, [])
    assert result.uids == ["uid-1@example.test"]


def test_read_receipt_report_is_not_a_bounce_nor_a_reply() -> None:
    raw = _report("disposition-notification", ACCEPT.encode(), sender="beth@example.test")
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    assert not is_delivery_status_notification(msg)
    assert classify_message(msg).kind == "none"


@pytest.mark.parametrize(
    "headers, body",
    [
        ("From: MAILER-DAEMON@mx.example\r\nSubject: failure notice", "Hi. This is qmail-send."),
        ("From: postmaster@x.test\r\nSubject: Undeliverable: Accepted: Interview", "sorry"),
        ("From: a@b.c\r\nX-Failed-Recipients: gone@x.test\r\nSubject: x", "x"),
        ("From: Mail Delivery System <x@y.z>\r\nSubject: hi", "Diagnostic-Code: smtp; 550"),
    ],
)
def test_bounce_heuristics(headers: str, body: str) -> None:
    raw = (
        mail(
            ("text/plain", "", body.encode()),
            ("text/calendar", "", ACCEPT.encode()),
            headers=headers,
        )
        .replace(b"From: Beth <beth@example.test>\r\n", b"")
        .replace(b"Subject: Accepted: Interview\r\n", b"")
    )
    assert classify_bytes(raw).kind == "bounce"


def test_ordinary_reply_is_not_a_bounce() -> None:
    raw = mail(("text/calendar; method=REPLY", "", ACCEPT.encode()), headers="Return-Path: <>")
    assert not is_delivery_status_notification(email.message_from_bytes(raw))
    assert classify_bytes(raw).kind == "reply"
