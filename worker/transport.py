"""SMTP out: reused connections per server, answers classified as sent/temporary/permanent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from core.mail.addresses import is_plain_address
from core.mail.mime import Envelope
from core.mail.smtp_connect import SmtpTarget, make_client, open_socket
from core.mail.smtp_connect import relay_target as relay_target  # re-exported
from core.mail.smtp_connect import target_for as target_for  # re-exported
from core.services import pacing
from core.settings import get_settings
from worker.smtp_answers import ConnectionsBusy, Outcome, SendResult, classify, words
from worker.smtp_dialogue import Gate, announced, one_by_one, pipelined

log = logging.getLogger(__name__)

# A pooled connection idle for longer than this is probed with RSET before it is reused.
IDLE_PROBE_SECONDS = 2.0
# A connection that waits with an announced envelope (worker/smtp_dialogue.py) for longer
# than this is closed: its lane did not send that mail (it failed to build, the worker is
# stopping). Its lane takes it back within milliseconds otherwise.
ANNOUNCED_STALE_SECONDS = 2.0


def wire_content(data: bytes) -> bytes:
    """The content of DATA as it goes on the wire: every line ended by CRLF, a period at
    the start of a line doubled, and the final "." line (aiosmtplib's rules). The worker's
    mails (core.mail.mime) are CRLF already and almost never have a line that starts with
    a period: that is checked by counting bytes, a quarter of what the two regular
    expressions cost on a 2 KB mail; any other mail goes through them."""
    if (data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
            and not data.startswith(b".") and b"\n." not in data):
        return data + b".\r\n"
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"


async def _transaction(client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str],
                       data: bytes, before_data: Gate = None) -> dict[str, tuple[int, str]]:
    """MAIL, RCPT for each recipient, DATA: aiosmtplib's sendmail for plain addresses,
    without its parsing of each address as a header (a tenth of a bulk worker's time) and
    its timer a reply (worker/smtp_dialogue.py). Same outcomes: the sender or every recipient refused
    raises, the transaction is reset after a refusal, and the refused copies are returned;
    a server that goes silent for the client's timeout, or away, closes the connection.

    With `before_data`, it is awaited between the server's 354 and the content: the server
    cannot accept the mail before the gate opens, and the wait overlaps the round trips."""
    message = wire_content(data)
    try:
        async with asyncio.timeout(None) as deadline:
            if client.supports_extension("pipelining"):
                refused = await pipelined(client, deadline, sender, recipients, message,
                                          before_data)
            else:
                refused = await one_by_one(client, deadline, sender, recipients, message,
                                           before_data)
    except TimeoutError as exc:
        client.close()
        raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from exc
    except aiosmtplib.SMTPServerDisconnected:
        client.close()
        raise
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        if announced(client) is None:  # (in DATA mode an RSET would be content)
            with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
                await client.rset()  # a closed connection (after a 421) raises, suppressed
        raise
    return {r.recipient: (r.code, r.message) for r in refused}


def plain_addresses(sender: str, recipients: Sequence[str]) -> bool:
    """Addresses the worker's own dialogue (`_transaction`) writes as they are: a mail of
    ready bytes with these goes that way, and only such a mail can be announced."""
    return all(is_plain_address(a) for a in (sender, *recipients))


def _lease_seconds() -> float:
    return max(60.0, 3 * get_settings().smtp_timeout_seconds)


class _Pool:
    """Up to `size` open connections to one server, handed out one at a time. For a
    server with a connection limit every open connection is also counted in Redis (all
    worker processes together stay within it) and idle ones close after a moment."""

    def __init__(self, target: SmtpTarget, size: int) -> None:
        self.target = target
        self.idle: list[tuple[aiosmtplib.SMTP, float]] = []
        if target.max_connections:
            size = min(size, target.max_connections)
        self.sem = asyncio.Semaphore(size)
        self.holders: dict[int, str] = {}
        self._reaper: asyncio.TimerHandle | None = None

    @property
    def counted(self) -> bool:
        return bool(self.target.owner and self.target.max_connections)

    async def _take_permit(self) -> str:
        t = self.target
        assert t.owner and t.max_connections
        holder = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(2.0, min(get_settings().lease_seconds / 2, 30.0))
        while not await pacing.take_connection(t.owner, t.max_connections, holder,
                                               _lease_seconds()):
            if loop.time() > deadline:
                raise ConnectionsBusy(
                    f"all {t.max_connections} connections the server allows are in use")
            await asyncio.sleep(0.1)
        return holder

    async def _give_back(self, client: aiosmtplib.SMTP, *, closed: bool = True) -> None:
        holder = self.holders.pop(id(client), None)
        if holder is not None and self.target.owner:
            if closed:
                # Let the server see the close before another process connects.
                await asyncio.sleep(0.05)
            with contextlib.suppress(Exception):
                await pacing.give_back_connection(self.target.owner, holder)

    async def _drop(self, client: aiosmtplib.SMTP) -> None:
        client.close()
        await self._give_back(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        t = self.target
        holder = await self._take_permit() if self.counted else None
        try:
            sock = None
            if t.owner:
                sock = await open_socket(t.host, t.port, get_settings().smtp_timeout_seconds)
            client = make_client(t, sock)
            try:
                await client.connect()
                if t.username:
                    await client.login(t.username, t.password or "")
            except BaseException:
                client.close()
                raise
        except BaseException:
            if holder is not None and t.owner:
                with contextlib.suppress(Exception):
                    await asyncio.sleep(0.05)
                    await pacing.give_back_connection(t.owner, holder)
            raise
        if holder is not None:
            self.holders[id(client)] = holder
        return client

    async def _checked_out(self, envelope: Envelope | None = None) -> aiosmtplib.SMTP:
        """An open connection: the one that waits with this mail's announced envelope, else
        the one used last without one, else a new one. A connection that sat idle for a
        while is probed with RSET first (the server may have dropped it); one used a
        moment ago is not, which spares a round trip per mail in a bulk send. Connections
        another mail was announced on are left to that mail's lane, unless stale."""
        # Sorted out before any await: other lanes check connections in and out meanwhile.
        now = time.monotonic()
        match: aiosmtplib.SMTP | None = None
        stale: list[aiosmtplib.SMTP] = []
        keep: list[tuple[aiosmtplib.SMTP, float]] = []
        for client, last_used in self.idle:
            ahead = announced(client)
            if ahead is None:
                keep.append((client, last_used))
            elif match is None and envelope is not None and envelope.data is not None \
                    and ahead.matches(envelope.mail_from, envelope.recipients):
                match = client
            elif now - ahead.at > ANNOUNCED_STALE_SECONDS or not client.is_connected:
                stale.append(client)
            else:
                keep.append((client, last_used))
        self.idle = keep
        for client in stale:
            await self._drop(client)
        if match is not None:
            if match.is_connected and await self._counted_again(match):
                return match
            await self._drop(match)
        while True:
            free = [i for i, (c, _) in enumerate(self.idle) if announced(c) is None]
            if not free:
                return await self._connect()
            client, last_used = self.idle.pop(free[-1])
            if not client.is_connected:
                await self._give_back(client)
                continue
            if not await self._counted_again(client):
                await self._drop(client)
                continue
            if time.monotonic() - last_used < IDLE_PROBE_SECONDS:
                return client
            try:
                await client.rset()
                return client
            except (aiosmtplib.SMTPException, OSError):
                await self._drop(client)

    async def _counted_again(self, client: aiosmtplib.SMTP) -> bool:
        """For a server with a connection limit: the connection's count renewed (False:
        it ran out, after a long pause or with Redis lost: open one anew)."""
        if not (self.counted and self.target.owner):
            return True
        holder = self.holders.get(id(client))
        return holder is not None and await pacing.take_connection(
            self.target.owner, self.target.max_connections or 1, holder, _lease_seconds())

    def _check_in(self, client: aiosmtplib.SMTP) -> None:
        self.idle.append((client, time.monotonic()))
        if self.counted and self._reaper is None:
            delay = get_settings().limited_idle_close_seconds
            self._reaper = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.ensure_future(self._reap()))

    async def _reap(self) -> None:
        """Close connections idle for a while, so other processes may have them."""
        self._reaper = None
        limit = get_settings().limited_idle_close_seconds
        now = time.monotonic()
        keep: list[tuple[aiosmtplib.SMTP, float]] = []
        old: list[aiosmtplib.SMTP] = []
        for client, last_used in self.idle:
            if now - last_used >= limit:
                old.append(client)
            else:
                keep.append((client, last_used))
        self.idle = keep
        for client in old:
            await self._quit(client)
        if self.idle and self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(
                limit, lambda: asyncio.ensure_future(self._reap()))

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        if announced(client) is not None:
            # In DATA mode QUIT would be content: close; the server drops the mail.
            client.close()
        else:
            try:
                await client.quit()
            except Exception:
                client.close()
        await self._give_back(client)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the server's connections, free for the caller's next mail."""
        async with self.sem:
            yield

    async def send_in_slot(self, envelope: Envelope,
                           before_data: Gate = None) -> dict[str, tuple[int, str]]:
        """Send on a connection; the caller holds a slot."""
        client = await self._checked_out(envelope)
        try:
            refused = await self._send_on(client, envelope, before_data)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            # The server answered (the transaction has been reset): the connection
            # itself is still good.
            self._check_in(client)
            raise
        except BaseException:
            await self._drop(client)
            raise
        self._check_in(client)
        return refused

    @staticmethod
    async def _send_on(client: aiosmtplib.SMTP, envelope: Envelope,
                       before_data: Gate = None) -> dict[str, tuple[int, str]]:
        if envelope.data is not None and not client.is_ehlo_or_helo_needed \
                and plain_addresses(envelope.mail_from, envelope.recipients):
            return await _transaction(client, envelope.mail_from, envelope.recipients,
                                      envelope.data, before_data)
        if announced(client) is not None:  # (not reached: _checked_out matched it)
            client.close()
            raise aiosmtplib.SMTPServerDisconnected(
                "The connection waits for another mail's content")
        if before_data is not None:
            await before_data()
        if envelope.data is not None:
            # Ready 7-bit bytes with ASCII addresses: no SMTP extension needed.
            refused, _ = await client.sendmail(envelope.mail_from, envelope.recipients,
                                               envelope.data)
        else:
            assert envelope.message is not None
            refused, _ = await client.send_message(
                envelope.message, sender=envelope.mail_from, recipients=envelope.recipients)
        return {r: (code, msg) for r, (code, msg) in refused.items()}

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        while self.idle:
            client, _ = self.idle.pop()
            await self._quit(client)


class Transport:
    """The worker's SMTP side: one pool per distinct server."""

    def __init__(self) -> None:
        self.pools: dict[SmtpTarget, _Pool] = {}

    def pool(self, target: SmtpTarget) -> _Pool:
        p = self.pools.get(target)
        if p is None:
            p = _Pool(target, get_settings().smtp_connections_per_server)
            self.pools[target] = p
        return p

    def slot(self, target: SmtpTarget) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait until one of `target`'s connections is free and hold it: the worker claims
        the message it sends there only once it has the slot (worker/jobs.py)."""
        return self.pool(target).slot()

    async def send(self, target: SmtpTarget, envelope: Envelope,
                   primary: Sequence[str] = (), *, in_slot: bool = False,
                   before_data: Gate = None) -> SendResult:
        """Send one mail; with in_slot the caller already holds one of the target's slots.
        `before_data` is awaited right before DATA (after MAIL and RCPT): the worker makes
        the mail wait there until the SENT of the previous one on the connection is
        written, so that write overlaps this mail's first round trips."""
        if not in_slot:
            async with self.slot(target):
                return await self.send(target, envelope, primary, in_slot=True,
                                       before_data=before_data)
        try:
            refused = await self.pool(target).send_in_slot(envelope, before_data)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            return classify(exc, target)
        primary_l = {p.lower() for p in primary}
        hit = {r: v for r, v in refused.items() if r.lower() in primary_l}
        if hit:
            perm = all(code >= 500 for code, _ in hit.values())
            text = "; ".join(f"{r}: {words(c, m)}" for r, (c, m) in hit.items())
            return SendResult(Outcome.PERMANENT if perm else Outcome.TEMPORARY,
                              f"the mail server {target.describe()} refused the recipient "
                              f"({text})")
        detail = f"accepted by {target.describe()}"
        if refused:
            detail += "; refused copies: " + "; ".join(
                f"{r}: {words(c, m)}" for r, (c, m) in refused.items()
            )
        return SendResult(Outcome.SENT, detail)

    async def close(self) -> None:
        for p in self.pools.values():
            await p.close()
        self.pools.clear()
