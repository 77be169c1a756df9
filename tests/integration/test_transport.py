"""The worker's SMTP side against a real aiosmtpd server: every answer a server can give
to MAIL, RCPT and DATA ends in the right outcome, and a pooled connection stays usable
after a refusal. Plain addresses take the worker's own MAIL/RCPT/DATA transaction; others
go through aiosmtplib's sendmail; both must agree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from core.mail.mime import build_email
from core.mail.smtp_connect import SmtpTarget
from worker.smtp_answers import Outcome
from worker.transport import Transport

pytestmark = pytest.mark.asyncio


def _row(to: list[str], cc: list[str] | None = None) -> Any:
    return SimpleNamespace(
        id=uuid.uuid4(), from_name="Ada Admin", from_address="recruiting@acme.example",
        to_addrs=to, cc_addrs=cc or [], bcc_addrs=[], subject="Hello", body="Hi there.",
        body_html=None, ics=None, ics_method=None, created_at=datetime.now(UTC),
        rfc_message_id=f"{uuid.uuid4().hex}@acme.example", in_reply_to=None)


# Plain addresses (the worker's own transaction) and one the fast path leaves to aiosmtplib.
@pytest.mark.parametrize("cc", ["copy@example.org", "odd..dots@example.org"])
async def test_every_server_answer_ends_right_and_the_connection_stays(sink: Any,
                                                                       cc: str) -> None:
    transport = Transport()
    target = SmtpTarget("127.0.0.1", sink.port)
    try:
        ok = build_email(_row(["nina@example.org"], [cc]))
        assert ok.data is not None  # written to bytes, not an EmailMessage
        assert (await transport.send(target, ok, primary=ok.recipients[:1])).outcome == Outcome.SENT

        # A refused copy: sent to the candidate, the refusal in words.
        sink.handler.refuse_rcpt[cc.lower()] = "550 5.1.1 no such mailbox"
        result = await transport.send(target, build_email(_row(["nina@example.org"], [cc])),
                                      primary=["nina@example.org"])
        assert result.outcome == Outcome.SENT
        assert "refused copies" in result.detail and "550 5.1.1 no such mailbox" in result.detail

        # The candidate refused: permanent, in words.
        sink.handler.refuse_rcpt["nina@example.org"] = "550 5.1.1 mailbox unknown"
        result = await transport.send(target, build_email(_row(["nina@example.org"], [cc])),
                                      primary=["nina@example.org"])
        assert result.outcome == Outcome.PERMANENT
        assert "refused the recipient" in result.detail and "mailbox unknown" in result.detail
        sink.handler.refuse_rcpt.clear()

        # Sender refused, permanently and for now.
        sink.handler.mail_reply = "553 5.7.1 sender not allowed"
        result = await transport.send(target, build_email(_row(["nina@example.org"])))
        assert result.outcome == Outcome.PERMANENT and "refused the sender" in result.detail
        sink.handler.mail_reply = "451 4.7.1 greylisted"
        result = await transport.send(target, build_email(_row(["nina@example.org"])))
        assert result.outcome == Outcome.TEMPORARY and "greylisted" in result.detail
        sink.handler.mail_reply = None

        # DATA refused for now.
        sink.handler.data_reply = "452 4.3.1 out of space"
        result = await transport.send(target, build_email(_row(["nina@example.org"])))
        assert result.outcome == Outcome.TEMPORARY and "out of space" in result.detail
        sink.handler.data_reply = None

        # After every refusal the same pooled connection carries the next mail.
        last = build_email(_row(["nina@example.org"]))
        assert (await transport.send(target, last)).outcome == Outcome.SENT
        assert len(transport.pool(target).idle) == 1
        got = [r for r in sink.received]
        assert len(got) == 3
        assert got[-1].message["Message-ID"] == last.parsed()["Message-ID"]
        assert got[1].rcpt_tos == ["nina@example.org"]  # the refused copy is not there
    finally:
        await transport.close()
