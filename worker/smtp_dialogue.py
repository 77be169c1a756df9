"""The worker's side of an SMTP mail transaction on aiosmtplib's connection, in one of two ways.

`one_by_one`: MAIL, each RCPT, DATA and the content, each awaiting its reply (`Replies`).

`pipelined`: command pipelining (RFC 2920): MAIL, every RCPT and DATA go to the server in
one write and their replies are read together, so a mail costs two round trips (envelope,
content) instead of three plus one per recipient. Used only with a server that announces
PIPELINING in its EHLO answer (worker/transport.py).

Announced envelopes: when the gate before the content names the mail the caller sends next
on this connection (`Announce`: its MAIL FROM and recipients), that envelope follows the
content in the same write ("the RSET/MAIL FROM sequence necessary to initiate a new message
transaction can be placed in the same group as the final transfer of the headers and body
of the previous message", RFC 2920, 3.1), and a mail in a steady stream costs one round
trip. Its replies wait on the connection (`announced`) for the transaction with exactly
that envelope; the server is then in DATA mode, so a connection whose announced mail is not
sent must be closed, never answered with anything else (worker/transport.py): a server
drops a mail whose content never ended.

aiosmtplib reads one reply per command and drops data that arrives while a reply waits to
be picked up, so replies that come in separate segments would be lost. While a pipelined
transaction runs, `Pipeline` takes the connection's incoming data itself (the protocol's
`data_received`, on that one protocol object) and parses every complete reply with
aiosmtplib's own parser; a connection that closes still fails the protocol's waiter, which
is what `Pipeline` awaits.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

# The envelope (MAIL FROM, recipients) of the mail the caller sends next on the connection.
Announce = tuple[str, Sequence[str]]
# Awaited between the server's 354 and the content (worker/lanes.py); it may name the mail
# sent next on this connection, whose envelope then follows the content.
Gate = Callable[[], Awaitable[Announce | None]] | None


@dataclass
class Announced:
    """An envelope written after a content, and the server's replies to it."""

    sender: str
    recipients: tuple[str, ...]
    replies: list[SMTPResponse]
    at: float = field(default_factory=time.monotonic)

    def matches(self, sender: str, recipients: Sequence[str]) -> bool:
        return self.sender == sender and self.recipients == tuple(recipients)


# Per connection: the announced envelope it waits with, in DATA mode (at most one).
_ANNOUNCED: weakref.WeakKeyDictionary[aiosmtplib.SMTP, Announced] = weakref.WeakKeyDictionary()


def announced(client: aiosmtplib.SMTP) -> Announced | None:
    """The envelope this connection waits with (its server in DATA mode), if any."""
    return _ANNOUNCED.get(client)


_RCPT_ACCEPTED = (SMTPStatus.completed, SMTPStatus.will_forward)


def _mail_from(sender: str) -> bytes:
    return b"MAIL FROM:<" + sender.encode() + b">\r\n"


def _rcpt_to(recipient: str) -> bytes:
    return b"RCPT TO:<" + recipient.encode() + b">\r\n"


def _envelope(sender: str, recipients: Sequence[str]) -> list[bytes]:
    return [_mail_from(sender), *map(_rcpt_to, recipients), b"DATA\r\n"]


class _Dialogue:
    """What both ways share: aiosmtplib's protocol of a connected client, one deadline per
    transaction that each command moves on, and the content after the gate."""

    def __init__(self, client: aiosmtplib.SMTP, deadline: asyncio.Timeout) -> None:
        protocol = client.protocol
        if protocol is None or protocol._command_lock is None \
                or protocol._response_waiter is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.client = client
        self.protocol: SMTPProtocol = protocol
        self.lock: asyncio.Lock = protocol._command_lock
        self.deadline = deadline
        self.loop = asyncio.get_running_loop()

    def _arm(self) -> None:
        """A reply is due within the client's timeout from now."""
        self.deadline.reschedule(self.loop.time() + (self.client.timeout or 60.0))

    def _closing(self, replies: Sequence[SMTPResponse]) -> None:
        if any(r.code == SMTPStatus.domain_unavailable for r in replies):
            self.client.close()  # 421: the server is closing the connection (as aiosmtplib)

    async def ask(self, data: bytes) -> SMTPResponse:
        """Write `data` and return the one reply to it."""
        raise NotImplementedError

    async def content(self, message: bytes, before_data: Gate) -> None:
        """After the server's 354: wait at the gate (no server deadline meanwhile), then
        the content, which the server must accept; with the envelope the gate announces
        behind it where the dialogue pipelines."""
        after: Announce | None = None
        if before_data is not None:
            self.deadline.reschedule(None)
            after = await before_data()
        reply = await self._content(message, after)
        if reply.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)

    async def _content(self, message: bytes, after: Announce | None) -> SMTPResponse:
        """Write the content and return its reply; one command at a time, an announced
        envelope cannot follow it."""
        return await self.ask(message)


class Replies(_Dialogue):
    """Commands written to aiosmtplib's protocol and their replies awaited on its waiter
    directly.

    aiosmtplib's `read_response` wraps every reply in `asyncio.wait_for`: a timer and a
    callback that wakes the caller one pass of the event loop after the reply arrived.
    On a worker with eight connections busy, that pass is a wait behind everything else
    that is ready, four times a mail."""

    async def ask(self, data: bytes) -> SMTPResponse:
        protocol = self.protocol
        waiter = protocol._response_waiter
        if waiter is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self._arm()
        protocol._response_pending = True
        protocol.write(data)
        try:
            reply: SMTPResponse = await waiter
        finally:
            protocol._response_pending = False
            protocol._response_waiter = (None if protocol.transport is None
                                         else self.loop.create_future())
        self._closing([reply])
        return reply


class Pipeline(_Dialogue):
    """Replies of pipelined commands on one connection, in order; use as a context
    manager around the transaction (the protocol gets its own reading back on exit)."""

    def __init__(self, client: aiosmtplib.SMTP, deadline: asyncio.Timeout) -> None:
        super().__init__(client, deadline)
        self.replies: deque[SMTPResponse] = deque()
        self.wanted = 0

    def __enter__(self) -> Pipeline:
        # Installed on this protocol object only: `protocol.data_received` now finds this
        # method first, and the transport is told to look it up again (_reread).
        self.protocol.data_received = self._data_received  # type: ignore[method-assign]
        self._reread()
        # While pending, aiosmtplib fails the waiter when the connection is lost.
        self.protocol._response_pending = True
        return self

    def __exit__(self, *exc: Any) -> None:
        protocol = self.protocol
        del protocol.data_received  # the class's method again
        self._reread()
        protocol._response_pending = False
        if self.replies or protocol._buffer:
            # Replies nobody asked for: the dialogue is out of step, the connection
            # cannot be trusted for another mail.
            self.client.close()
        waiter = protocol._response_waiter
        if waiter is not None and waiter.done():
            if not waiter.cancelled():
                waiter.exception()  # retrieved: not logged as never retrieved
            protocol._response_waiter = (None if protocol.transport is None
                                         else self.loop.create_future())

    def _reread(self) -> None:
        # uvloop's transports keep the protocol's data_received from when it was set:
        # setting the protocol again makes them look it up (asyncio's look it up each time).
        transport = self.protocol.transport
        if transport is not None and not transport.is_closing():
            transport.set_protocol(self.protocol)

    def _data_received(self, data: bytes) -> None:
        # Every reply is kept, also one that comes while the waiter is already resolved
        # and before its task has run: `send` then finds it out of step.
        protocol = self.protocol
        waiter = protocol._response_waiter
        if waiter is None:
            return  # the connection is gone
        protocol._buffer.extend(data)
        try:
            while True:
                reply = protocol._read_response_from_buffer()
                if reply is None:
                    break
                self.replies.append(reply)
            if len(protocol._buffer) > MAX_RESPONSE_LENGTH:
                raise aiosmtplib.SMTPResponseException(500, "Response too long")
        except Exception as exc:
            if not waiter.done():
                protocol._set_response_exception(waiter, exc)
            return
        if self.wanted and len(self.replies) >= self.wanted and not waiter.done():
            waiter.set_result(self.replies[-1])

    async def send(self, data: bytes, replies: int) -> list[SMTPResponse]:
        """Write `data` (one or more commands) and return the next `replies` replies."""
        protocol = self.protocol
        if self.replies:  # replies to nothing we sent: the dialogue is out of step
            self.client.close()
            raise aiosmtplib.SMTPServerDisconnected(
                f"The server answered before it was asked: {self.replies[0].code}"
                f" {self.replies[0].message}")
        waiter = protocol._response_waiter
        if waiter is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self._arm()
        protocol.write(data)
        # No reply can have come yet: data arrives through the event loop, at the await.
        self.wanted = replies
        try:
            await waiter
        finally:
            self.wanted = 0
            if waiter.done() and protocol.transport is not None:
                protocol._response_waiter = self.loop.create_future()
        got = [self.replies.popleft() for _ in range(replies)]
        self._closing(got)
        return got

    async def ask(self, data: bytes) -> SMTPResponse:
        return (await self.send(data, 1))[0]

    async def _content(self, message: bytes, after: Announce | None) -> SMTPResponse:
        """The content, and the announced envelope behind it in the same write."""
        if after is None:
            return await self.ask(message)
        sender, recipients = after
        envelope = _envelope(sender, recipients)
        replies = await self.send(message + b"".join(envelope), 1 + len(envelope))
        # The server now takes the announced mail's content: only that mail may follow.
        _ANNOUNCED[self.client] = Announced(sender, tuple(recipients), replies[1:])
        return replies[0]


async def one_by_one(client: aiosmtplib.SMTP, deadline: asyncio.Timeout, sender: str,
                     recipients: Sequence[str], message: bytes, before_data: Gate
                     ) -> list[aiosmtplib.SMTPRecipientRefused]:
    """Each command, then its reply."""
    replies = Replies(client, deadline)
    async with replies.lock:
        reply = await replies.ask(_mail_from(sender))
        if reply.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for recipient in recipients:
            reply = await replies.ask(_rcpt_to(recipient))
            if reply.code not in _RCPT_ACCEPTED:
                refused.append(aiosmtplib.SMTPRecipientRefused(
                    reply.code, reply.message, recipient))
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        reply = await replies.ask(b"DATA\r\n")
        if reply.code != SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        await replies.content(message, before_data)
    return refused


async def pipelined(client: aiosmtplib.SMTP, deadline: asyncio.Timeout, sender: str,
                    recipients: Sequence[str], message: bytes, before_data: Gate
                    ) -> list[aiosmtplib.SMTPRecipientRefused]:
    """MAIL, every RCPT and DATA in one write (RFC 2920), then the content: the same
    outcomes as `one_by_one` in two round trips."""
    with Pipeline(client, deadline) as pipe:
        async with pipe.lock:
            ahead = _ANNOUNCED.pop(client, None)
            if ahead is not None:
                if not ahead.matches(sender, recipients):
                    # Never another mail's content after an announced envelope.
                    client.close()
                    raise aiosmtplib.SMTPServerDisconnected(
                        "The connection waits for another mail's content")
                answers = ahead.replies  # written behind the previous mail's content
            else:
                envelope = _envelope(sender, recipients)
                answers = await pipe.send(b"".join(envelope), len(envelope))
            mail, data_reply = answers[0], answers[-1]
            refused = [aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
                       for recipient, reply in zip(recipients, answers[1:-1], strict=True)
                       if reply.code not in _RCPT_ACCEPTED]
            nobody = mail.code != SMTPStatus.completed or len(refused) == len(recipients)
            if nobody and data_reply.code == SMTPStatus.start_input:
                # The server took DATA though no one can receive the mail: end it empty
                # (RFC 2920, 3.1); its answer does not matter.
                await pipe.ask(b".\r\n")
            if mail.code != SMTPStatus.completed:
                raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
            if len(refused) == len(recipients):
                raise aiosmtplib.SMTPRecipientsRefused(refused)
            if data_reply.code != SMTPStatus.start_input:
                raise aiosmtplib.SMTPDataError(data_reply.code, data_reply.message)
            await pipe.content(message, before_data)
    return refused
