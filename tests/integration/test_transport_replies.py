"""The worker's own MAIL/RCPT/DATA (worker/transport.py `_Replies`) against a real aiosmtpd
server that misbehaves: one that goes silent, one that says 421 and hangs up, one that drops
the connection after the content. Each mail ends TEMPORARY in words, the broken connection
is not reused, and the next mail goes out; the wait at the gate is not a server timeout."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from core.mail.mime import build_email
from core.mail.smtp_connect import SmtpTarget
from core.settings import reset_settings
from tests.support.sink import SinkHandler
from worker.smtp_answers import Outcome
from worker.transport import Transport


@dataclass
class Scripted(SinkHandler):
    silent_at: str | None = None  # "RCPT" or "DATA": no answer to that command
    drop_after_content: bool = False
    connections: int = 0

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.silent_at == "RCPT":
            await asyncio.sleep(30)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.silent_at == "DATA":
            await asyncio.sleep(30)
        if self.drop_after_content:
            assert server.transport is not None
            server.transport.abort()
            return "250 never seen"
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Odd:
    handler: Scripted
    transport: Transport
    target: SmtpTarget


@pytest.fixture
async def odd(env: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Odd]:
    """The scripted server (SMTP timeout 1 s) and the worker's transport to it."""
    monkeypatch.setenv("RECRUITMAIL_SMTP_TIMEOUT_SECONDS", "1")
    reset_settings()
    handler = Scripted()
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(handler, hostname="odd.test", loop=loop),
                                   host="127.0.0.1", port=0)
    transport = Transport()
    try:
        yield Odd(handler, transport, SmtpTarget("127.0.0.1", srv.sockets[0].getsockname()[1]))
    finally:
        await transport.close()
        srv.close()
        reset_settings()


def _mail() -> Any:
    return build_email(SimpleNamespace(
        id=uuid.uuid4(), from_name="Ada Admin", from_address="recruiting@acme.example",
        to_addrs=["nina@example.org"], cc_addrs=[], bcc_addrs=[], subject="Hello",
        body="Hi there.", body_html=None, ics=None, ics_method=None,
        created_at=datetime.now(UTC), rfc_message_id=f"{uuid.uuid4().hex}@acme.example",
        in_reply_to=None))


@pytest.mark.parametrize("silent_at", ["RCPT", "DATA"])
async def test_a_server_that_goes_silent_fails_the_mail_for_now(odd: Odd, silent_at: str) -> None:
    odd.handler.silent_at = silent_at
    result = await asyncio.wait_for(odd.transport.send(odd.target, _mail()), 10)
    assert result.outcome == Outcome.TEMPORARY
    assert "did not answer in time" in result.detail, result.detail
    assert odd.transport.pool(odd.target).idle == []  # that connection is not reused
    odd.handler.silent_at = None
    assert (await odd.transport.send(odd.target, _mail())).outcome == Outcome.SENT
    assert odd.handler.connections == 2 and len(odd.handler.received) == 1


async def test_421_ends_the_connection_and_the_next_mail_takes_a_new_one(odd: Odd) -> None:
    assert (await odd.transport.send(odd.target, _mail())).outcome == Outcome.SENT
    odd.handler.mail_reply = "421 4.7.0 Too busy, closing"
    result = await odd.transport.send(odd.target, _mail())
    # A 421 is the server asking to slow down (paced for a company server).
    assert result.outcome == Outcome.THROTTLED and "Too busy" in result.detail
    odd.handler.mail_reply = None
    assert (await odd.transport.send(odd.target, _mail())).outcome == Outcome.SENT
    assert odd.handler.connections == 2 and len(odd.handler.received) == 2


async def test_a_connection_dropped_after_the_content_is_a_temporary_failure(odd: Odd) -> None:
    odd.handler.drop_after_content = True
    result = await odd.transport.send(odd.target, _mail())
    assert result.outcome == Outcome.TEMPORARY, result
    odd.handler.drop_after_content = False
    assert (await odd.transport.send(odd.target, _mail())).outcome == Outcome.SENT
    assert odd.handler.connections == 2


async def test_the_wait_at_the_gate_is_not_a_server_timeout(odd: Odd) -> None:
    """The content waits after the 354 for the previous mail's SENT write: a slow write
    (longer than the SMTP timeout) must not fail the mail as a silent server."""

    async def slow_write() -> None:
        await asyncio.sleep(1.5)

    result = await odd.transport.send(odd.target, _mail(), before_data=slow_write)
    assert result.outcome == Outcome.SENT, result
    assert len(odd.handler.received) == 1
