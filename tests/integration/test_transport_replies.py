"""The worker's own MAIL/RCPT/DATA (worker/smtp_dialogue.py), one by one and pipelined
(RFC 2920), against a real aiosmtpd server that misbehaves: one that goes silent, one that
says 421 and hangs up, one that drops the connection after the content, one that refuses
the sender, some recipients or the content. Each mail ends in words, a broken connection is
not reused, and the next mail goes out; the wait at the gate is not a server timeout."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

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
    rcpt_delay: float = 0.0  # answers RCPT this much later (its own TCP segment)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.silent_at == "RCPT":
            await asyncio.sleep(30)
        await asyncio.sleep(self.rcpt_delay)
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


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
async def odd(env: Any, monkeypatch: pytest.MonkeyPatch,
              request: pytest.FixtureRequest) -> AsyncIterator[Odd]:
    """The scripted server (SMTP timeout 1 s), announcing PIPELINING or not, and the
    worker's transport to it."""
    monkeypatch.setenv("RECRUITMAIL_SMTP_TIMEOUT_SECONDS", "1")
    reset_settings()
    handler = Scripted(pipelining=request.param)
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


def _mail(cc: tuple[str, ...] = ()) -> Any:
    return build_email(SimpleNamespace(
        id=uuid.uuid4(), from_name="Ada Admin", from_address="recruiting@acme.example",
        to_addrs=["nina@example.org"], cc_addrs=list(cc), bcc_addrs=[], subject="Hello",
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


async def test_replies_in_separate_segments_are_all_read(odd: Odd) -> None:
    """The RCPT answers come 50 ms after the MAIL answer, each in its own segment: none is
    lost while the one before waits to be read."""
    odd.handler.rcpt_delay = 0.05
    for _ in range(3):
        result = await asyncio.wait_for(
            odd.transport.send(odd.target, _mail(cc=("hr@example.org", "lead@example.org")),
                               ["nina@example.org"]), 10)
        assert result.outcome == Outcome.SENT, result
    assert [r.rcpt_tos for r in odd.handler.received] == [
        ["nina@example.org", "hr@example.org", "lead@example.org"]] * 3
    assert odd.handler.connections == 1


async def test_refusals_keep_the_dialogue_in_step(odd: Odd) -> None:
    """A refused copy, a refused candidate, a refused sender and refused content each come
    back in words, and the next mail goes out on the same connection."""
    t, primary = odd.target, ["nina@example.org"]
    odd.handler.refuse_rcpt = {"hr@example.org": "550 5.1.1 No such user"}
    result = await odd.transport.send(t, _mail(cc=("hr@example.org",)), primary)
    assert result.outcome == Outcome.SENT and "hr@example.org" in result.detail, result
    assert odd.handler.received[-1].rcpt_tos == ["nina@example.org"]

    odd.handler.refuse_rcpt = {"nina@example.org": "550 5.1.1 No such user"}
    result = await odd.transport.send(t, _mail(cc=("hr@example.org",)), primary)
    assert result.outcome == Outcome.PERMANENT and "No such user" in result.detail, result
    result = await odd.transport.send(t, _mail(), primary)  # every recipient refused
    assert result.outcome == Outcome.PERMANENT and "No such user" in result.detail, result
    odd.handler.refuse_rcpt = {}

    odd.handler.mail_reply = "553 5.7.1 Sender not allowed"
    result = await odd.transport.send(t, _mail(), primary)
    assert result.outcome == Outcome.PERMANENT and "Sender not allowed" in result.detail
    odd.handler.mail_reply = None

    odd.handler.data_reply = "554 5.6.0 Content rejected"
    result = await odd.transport.send(t, _mail(), primary)
    assert result.outcome == Outcome.PERMANENT and "Content rejected" in result.detail
    odd.handler.data_reply = None

    assert (await odd.transport.send(t, _mail(), primary)).outcome == Outcome.SENT
    # The copy whose candidate was refused still went to the accepted cc (as one by one).
    assert [r.rcpt_tos for r in odd.handler.received] == [
        ["nina@example.org"], ["hr@example.org"], ["nina@example.org"]]
    assert odd.handler.connections == 1


class _Recorder(asyncio.Protocol):
    """A bare SMTP server that notes what arrives in each read, to count round trips."""

    def __init__(self, reads: list[bytes], pipelining: bool, surprise_at: int = 0) -> None:
        self.reads = reads
        self.pipelining = pipelining
        self.surprise_at = surprise_at  # after the 354 of that DATA, a reply nobody asked for
        self.datas = 0
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses)
        self.transport = cast(asyncio.Transport, transport)
        transport.write(b"220 recorder ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)
        for line in data.split(b"\r\n")[:-1]:
            if self.in_data:
                if line == b".":
                    self.in_data = False
                    self.transport.write(b"250 2.0.0 Queued\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                extra = b"250-PIPELINING\r\n" if self.pipelining else b""
                self.transport.write(b"250-recorder\r\n" + extra + b"250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 Go ahead\r\n")
                self.datas += 1
                if self.datas == self.surprise_at:
                    self.transport.write(b"250 Surprise\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 Bye\r\n")
                self.transport.close()
            else:
                self.transport.write(b"250 OK\r\n")


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_mail_costs_two_round_trips_where_the_server_pipelines(
        env: Any, pipelining: bool) -> None:
    """MAIL, both RCPTs and DATA reach a server that announces PIPELINING in one write,
    the content in a second; to one that does not, each command on its own."""
    reads: list[bytes] = []
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: _Recorder(reads, pipelining), "127.0.0.1", 0)
    transport = Transport()
    target = SmtpTarget("127.0.0.1", srv.sockets[0].getsockname()[1])
    try:
        # The first mail on a connection says EHLO first; the second is the steady state.
        for _ in range(2):
            start = len(reads)
            result = await transport.send(target, _mail(cc=("hr@example.org",)))
            assert result.outcome == Outcome.SENT, result
        second = reads[start:]
        assert second[0].startswith(b"MAIL FROM:")
        envelope = b"".join(second).split(b"DATA\r\n")[0] + b"DATA\r\n"
        assert envelope.count(b"RCPT TO:") == 2
        if pipelining:
            assert second[0] == envelope  # one write: one round trip
            assert len(second) == 2  # and the content
        else:
            assert [r.split(b":")[0] for r in second[:4]] == [
                b"MAIL FROM", b"RCPT TO", b"RCPT TO", b"DATA\r\n"]
    finally:
        await transport.close()
        srv.close()


async def test_a_reply_nobody_asked_for_ends_the_connection(env: Any) -> None:
    """A pipelining server that answers once more than asked (after its 354): the content
    is not taken as accepted by that stray reply; the mail fails for now, the connection
    is dropped and the next mail goes out on a new one."""
    reads: list[bytes] = []
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: _Recorder(reads, True, surprise_at=2),
                                   "127.0.0.1", 0)
    transport = Transport()
    target = SmtpTarget("127.0.0.1", srv.sockets[0].getsockname()[1])
    try:
        assert (await transport.send(target, _mail())).outcome == Outcome.SENT  # opens it
        ehlos = len([r for r in reads if r.startswith(b"EHLO")])
        result = await transport.send(target, _mail())
        assert result.outcome == Outcome.TEMPORARY, result
        assert transport.pool(target).idle == []
        assert (await transport.send(target, _mail())).outcome == Outcome.SENT
        assert len([r for r in reads if r.startswith(b"EHLO")]) == ehlos + 1
    finally:
        await transport.close()
        srv.close()


async def test_pipelining_over_starttls(env: Any) -> None:
    """After STARTTLS the pipelined replies come through the TLS layer: every mail on the
    connection goes out, the second and third in two round trips."""
    from core.models.enums import SmtpSecurity
    from tests.support.tls import make_server_tls

    _, server_ctx = make_server_tls(env.tmp / "tls")
    handler = Scripted(rcpt_delay=0.02)  # RCPT answers in segments of their own
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: SMTP(handler, hostname="tls.test", loop=loop, tls_context=server_ctx,
                     require_starttls=True), "127.0.0.1", 0)
    transport = Transport()
    target = SmtpTarget("127.0.0.1", srv.sockets[0].getsockname()[1],
                        security=SmtpSecurity.STARTTLS, verify=False)
    try:
        for _ in range(3):
            result = await asyncio.wait_for(
                transport.send(target, _mail(cc=("hr@example.org",)), ["nina@example.org"]),
                10)
            assert result.outcome == Outcome.SENT, result
        assert [r.rcpt_tos for r in handler.received] == [
            ["nina@example.org", "hr@example.org"]] * 3
        assert handler.connections == 2  # EHLO before and after STARTTLS, one connection
    finally:
        await transport.close()
        srv.close()
