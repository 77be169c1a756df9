"""A real aiosmtpd SMTP server for tests: keeps what it accepts, refuses on command."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    # address (lower-case) -> SMTP reply for RCPT, e.g. "550 5.1.1 No such user"
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    # reply for every DATA, e.g. "451 4.3.0 Try again later"; None accepts
    data_reply: str | None = None
    # reply for every MAIL FROM, e.g. "553 5.7.1 Sender not allowed"; None accepts
    mail_reply: str | None = None
    # required AUTH credentials (user, password); None = no auth
    credentials: tuple[str, str] | None = None
    authenticated: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Announce PIPELINING (RFC 2920) in the EHLO answer, as Postfix, Exim and the big
    # providers do; aiosmtpd reads pipelined commands in order but does not announce it.
    pipelining: bool = True
    connections: int = 0

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = self.refuse_rcpt.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos),
                                      bytes(envelope.content or b"")))
        self.arrived.set()
        return "250 2.0.0 Queued"


class Sink:
    def __init__(self, handler: SinkHandler, server: asyncio.AbstractServer, port: int) -> None:
        self.handler = handler
        self.server = server
        self.port = port

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.handler.received) < count:
            if loop.time() > deadline:
                raise AssertionError(
                    f"expected {count} mails at the sink, got {len(self.handler.received)}"
                )
            await asyncio.sleep(0.02)
        return self.handler.received

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def start_sink(**smtp_kwargs: Any) -> Sink:
    handler = SinkHandler()
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(handler, hostname="sink.test", loop=loop, **smtp_kwargs)

    server = await loop.create_server(factory, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    return Sink(handler, server, port)
