"""The next mail's envelope behind a mail's content (RFC 2920, 3.1; worker/smtp_dialogue.py):
a mail in a steady stream costs one round trip, and a connection that waits with an
announced envelope in DATA mode never carries any other mail's content and never ends
that announced mail with anything it could deliver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from core.mail.mime import Envelope
from core.mail.smtp_connect import SmtpTarget
from tests.integration.test_transport_replies import Scripted, _mail, _Recorder
from worker import transport as transport_module
from worker.smtp_answers import Outcome
from worker.smtp_dialogue import Announce, announced
from worker.transport import Transport


def _announcing(mail: Envelope) -> Any:
    async def gate() -> Announce:
        return mail.mail_from, mail.recipients
    return gate


async def test_a_steady_stream_costs_one_round_trip_a_mail(env: Any) -> None:
    """The first mail's content and the second mail's MAIL, RCPT and DATA reach the server
    in one write; the second mail then sends its content alone, and each goes to its
    own recipients."""
    reads: list[bytes] = []
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: _Recorder(reads, True), "127.0.0.1", 0)
    transport = Transport()
    target = SmtpTarget("127.0.0.1", srv.sockets[0].getsockname()[1])
    first, second, third = _mail(), _mail(cc=("hr@example.org",)), _mail()
    try:
        # A new connection's first mail goes the plain way (EHLO first): no announce.
        assert (await transport.send(target, _mail(), before_data=_announcing(first))
                ).outcome == Outcome.SENT
        assert announced(transport.pool(target).idle[-1][0]) is None
        assert (await transport.send(target, first, before_data=_announcing(second))
                ).outcome == Outcome.SENT
        start = len(reads)
        assert (await transport.send(target, second, before_data=_announcing(third))
                ).outcome == Outcome.SENT
        assert (await transport.send(target, third)).outcome == Outcome.SENT
        assert announced(transport.pool(target).idle[-1][0]) is None
    finally:
        await transport.close()
        srv.close()
    stream = b"".join(reads)
    assert stream.count(b"EHLO") == 1
    # The content of one mail, then the envelope of the next, in one write.
    joined = reads[start - 1]
    assert joined.startswith(first.data.split(b"\r\n")[0])  # type: ignore[union-attr]
    assert joined.endswith(
        f"MAIL FROM:<{second.mail_from}>\r\nRCPT TO:<nina@example.org>\r\n"
        "RCPT TO:<hr@example.org>\r\nDATA\r\n".encode())
    # The second mail: its content (and the third's envelope) in one write; the third's
    # content; QUIT.
    assert len(reads) == start + 3 and reads[-1] == b"QUIT\r\n"
    assert second.data is not None and reads[start].startswith(second.data.split(b"\r\n")[0])
    assert reads[start].endswith(f"MAIL FROM:<{third.mail_from}>\r\n".encode()
                                 + b"RCPT TO:<nina@example.org>\r\nDATA\r\n")


@pytest.fixture
async def sink(env: Any) -> AsyncIterator[tuple[Scripted, Transport, SmtpTarget]]:
    handler = Scripted()
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(handler, hostname="sink.test", loop=loop),
                                   "127.0.0.1", 0)
    transport = Transport()
    try:
        yield handler, transport, SmtpTarget("127.0.0.1", srv.sockets[0].getsockname()[1])
    finally:
        await transport.close()
        srv.close()


def _ids(handler: Scripted) -> list[str]:
    return [r.message["Message-ID"] for r in handler.received]


def _id(mail: Envelope) -> str:
    assert mail.data is not None
    return next(line.split(b": ", 1)[1].decode() for line in mail.data.split(b"\r\n")
                if line.startswith(b"Message-ID: "))


async def test_another_mail_never_takes_an_announced_connection(
        sink: tuple[Scripted, Transport, SmtpTarget], monkeypatch: pytest.MonkeyPatch) -> None:
    """A mail was announced but is not sent (it failed to build, the worker stops): the
    next mail goes out on another connection, the announced one is closed once stale or
    when the transport closes, and the server delivers nothing of the announced mail."""
    handler, transport, target = sink
    first, never, other, later = _mail(), _mail(), _mail(cc=("hr@example.org",)), _mail()
    assert (await transport.send(target, _mail())).outcome == Outcome.SENT  # connects
    assert (await transport.send(target, first, before_data=_announcing(never))
            ).outcome == Outcome.SENT
    assert (await transport.send(target, other)).outcome == Outcome.SENT
    assert handler.connections == 2  # not on the connection that waits for `never`
    assert [r.rcpt_tos for r in handler.received[1:]] == [
        ["nina@example.org"], ["nina@example.org", "hr@example.org"]]
    monkeypatch.setattr(transport_module, "ANNOUNCED_STALE_SECONDS", 0.0)
    assert (await transport.send(target, later)).outcome == Outcome.SENT
    pool = transport.pool(target)
    assert all(announced(c) is None for c, _ in pool.idle)  # the stale one was closed
    await transport.close()
    await asyncio.sleep(0.2)
    assert _ids(handler)[1:] == [_id(first), _id(other), _id(later)]


async def test_closing_with_an_announced_mail_delivers_nothing_of_it(
        sink: tuple[Scripted, Transport, SmtpTarget]) -> None:
    """SIGTERM after an announce: the connection is closed, not sent QUIT (which the server
    in DATA mode would take as content): no mail of it is delivered."""
    handler, transport, target = sink
    first, never = _mail(), _mail()
    assert (await transport.send(target, _mail())).outcome == Outcome.SENT  # connects
    assert (await transport.send(target, first, before_data=_announcing(never))
            ).outcome == Outcome.SENT
    await asyncio.wait_for(transport.close(), 2)
    await asyncio.sleep(0.2)
    assert _ids(handler)[1:] == [_id(first)]


async def test_a_refused_content_with_an_announced_mail_behind_it(
        sink: tuple[Scripted, Transport, SmtpTarget]) -> None:
    """The server refuses a content whose next mail was announced: that mail fails with
    the server's words (no RSET is sent into the announced mail's DATA), and the
    announced mail still goes out, on the same connection, with its own content."""
    handler, transport, target = sink
    refused, announced_mail = _mail(), _mail()
    assert (await transport.send(target, _mail())).outcome == Outcome.SENT  # connects
    handler.data_reply = "554 5.6.0 Content refused"
    result = await transport.send(target, refused, before_data=_announcing(announced_mail))
    assert result.outcome == Outcome.PERMANENT and "Content refused" in result.detail
    handler.data_reply = None
    assert (await transport.send(target, announced_mail)).outcome == Outcome.SENT
    assert _ids(handler)[1:] == [_id(announced_mail)]
    assert handler.connections == 1
