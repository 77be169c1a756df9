"""RFC 3464 delivery status notifications: recipients, status, diagnostic, returned mail."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import compat32

from inbound.bounces import (
    DeliveryReport,
    describe_delay,
    describe_failure,
    parse_delivery_report,
    status_in_words,
)
from inbound.parsing import parse_mail
from tests.support.paths import CORPUS


def report_of(raw: bytes) -> DeliveryReport:
    return parse_delivery_report(message_from_bytes(raw, policy=compat32))


POSTFIX = b"""\
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="B1"

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

<nina@example.org>: host mail.example.org[192.0.2.1] said: 550 5.1.1
    <nina@example.org>: Recipient address rejected: User unknown (in reply to
    RCPT TO command)

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 4Bc7
Original-Envelope-Id: env-123
Arrival-Date: Mon,  5 Jan 2026 10:00:00 +0100 (CET)

Final-Recipient: rfc822; nina@example.org
Original-Recipient: rfc822;Nina@Example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nina@example.org>: Recipient address rejected:
    User unknown

--B1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Ada Admin <recruiting@mail.test>
To: nina@example.org
Subject: Invitation
Message-ID: <0123abcd@mail.test>
X-Recruitmail-Message: 7b2e4f0c-2d1b-4c55-9a43-0c2d7a1f7e11

--B1--
"""


def test_postfix_report() -> None:
    report = report_of(POSTFIX)
    assert report.structured
    [r] = report.recipients
    assert r.final_recipient == "nina@example.org"
    assert r.original_recipient == "nina@example.org"
    assert (r.action, r.status) == ("failed", "5.1.1")
    assert r.diagnostic_code == (
        "550 5.1.1 <nina@example.org>: Recipient address rejected: User unknown")
    assert r.remote_mta == "mail.example.org"
    assert report.original_message_id == "0123abcd@mail.test"
    assert report.original_envelope_id == "env-123"
    assert report.recruitmail_message == "7b2e4f0c-2d1b-4c55-9a43-0c2d7a1f7e11"
    assert report.is_failure and not report.is_delay
    reason = describe_failure(report)
    assert reason.startswith("Could not be delivered to nina@example.org: the mailbox does not "
                             "exist (permanent failure, status 5.1.1).")
    assert "Recipient address rejected: User unknown" in reason


def test_corpus_dsn_quoting_an_invitation() -> None:
    raw = (CORPUS / "other/dsn-bounce-of-calendarserver-request.eml").read_bytes()
    parsed = parse_mail(raw)
    assert parsed.is_dsn and parsed.calendar.replies == []
    report = parsed.report
    assert report is not None
    assert report.original_message_id == "20080812191939.51369.1538816694.0@plugh.example.com"
    [r] = report.failed
    assert r.final_recipient == "nonexistant@example.com" and r.status == "5.0.0"
    assert "unknown or illegal alias" in (r.diagnostic_code or "")


def test_delayed_is_not_a_failure() -> None:
    raw = POSTFIX.replace(b"Action: failed", b"Action: delayed").replace(
        b"Status: 5.1.1", b"Status: 4.4.1")
    report = report_of(raw)
    assert report.is_delay and not report.is_failure
    assert "delayed" in describe_delay(report) and "4.4.1" in describe_delay(report)


def test_several_recipients_and_mixed_actions() -> None:
    raw = POSTFIX.replace(
        b"\n--B1\nContent-Description: Undelivered",
        b"\nFinal-Recipient: rfc822; boss@acme.example\nAction: delivered\nStatus: 2.0.0\n\n"
        b"Final-Recipient: rfc822; full@example.org\nAction: failed\nStatus: 5.2.2\n"
        b"\n--B1\nContent-Description: Undelivered")
    report = report_of(raw)
    assert [r.final_recipient for r in report.recipients] == [
        "nina@example.org", "boss@acme.example", "full@example.org"]
    assert [r.final_recipient for r in report.failed] == ["nina@example.org", "full@example.org"]
    assert "the mailbox is full" in describe_failure(report)


def test_exchange_style_report_with_returned_message() -> None:
    raw = b"""\
From: postmaster@outlook.example
Subject: Undeliverable: Invitation
Content-Type: multipart/report; report-type="delivery-status"; boundary="x"

--x
Content-Type: text/html; charset="utf-8"

<p>Your message couldn't be delivered.</p>
--x
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01.prod.outlook.example
Received-From-MTA: dns;mail.test

Final-Recipient: rfc822;nina@example.org
Action: failed
Status: 5.4.1
Diagnostic-Code: smtp;550 5.4.1 Recipient address rejected: Access denied.

--x
Content-Type: message/rfc822

Message-ID: <abc@mail.test>
Subject: Invitation

body
--x--
"""
    report = report_of(raw)
    assert report.original_message_id == "abc@mail.test"
    assert report.failed[0].status == "5.4.1"
    assert "status 5.4.1" in describe_failure(report)
    assert "Access denied" in describe_failure(report)


def test_non_rfc3464_bounce_text() -> None:
    raw = b"""\
From: MAILER-DAEMON@qmail.example
Subject: failure notice

Hi. This is the qmail-send program at qmail.example.
I'm afraid I wasn't able to deliver your message to the following addresses.

<nina@example.org>:
192.0.2.7 does not like recipient.
Remote host said: 550 5.1.1 Mailbox unavailable
Giving up on 192.0.2.7.

--- Below this line is a copy of the message.

Message-ID: <q1@mail.test>
Subject: Hello
"""
    parsed = parse_mail(raw)
    assert parsed.is_dsn
    report = parsed.report
    assert report is not None and not report.structured
    assert report.original_message_id == "q1@mail.test"
    [r] = report.failed
    assert r.final_recipient == "nina@example.org" and r.status == "5.1.1"
    assert "Mailbox unavailable" in describe_failure(report)


def test_garbage_report_never_raises() -> None:
    for raw in (b"", b"Content-Type: multipart/report\r\n\r\n--",
                b"Content-Type: message/delivery-status\r\n\r\n\x00\xff: ;;;\r\n\r\nStatus: 9.9\r\n",
                POSTFIX.replace(b"Status: 5.1.1", b"Status: \xff" * 300)):
        report = report_of(raw)
        describe_failure(report)
        describe_delay(report)


def test_status_in_words() -> None:
    assert status_in_words("5.1.1") == "the mailbox does not exist (permanent failure, status 5.1.1)"
    assert status_in_words("4.2.2") == "the mailbox is full (temporary failure, status 4.2.2)"
    assert status_in_words("5.7.26").startswith("the mail failed the recipient's authentication")
    assert status_in_words("5.9.99").startswith("the mail could not be delivered")
    assert status_in_words("5.3.77") == (
        "the receiving mail system reported a problem (permanent failure, status 5.3.77)")
    assert status_in_words(None) == "the mail could not be delivered"
