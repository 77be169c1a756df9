"""SMTP out: reused connections per server, answers classified as sent/temporary/permanent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote, urlsplit

import aiosmtplib
from aiosmtplib.typing import SMTPStatus

from core.mail.addresses import is_plain_address
from core.mail.mime import Envelope
from core.models.companies import MailSettings
from core.models.enums import SmtpSecurity
from core.security import decrypt_secret
from core.settings import get_settings

log = logging.getLogger(__name__)

# A pooled connection idle for longer than this is probed with RSET before it is reused.
IDLE_PROBE_SECONDS = 2.0


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: SmtpSecurity = SmtpSecurity.NONE
    username: str | None = None
    password: str | None = None
    # Verify the server certificate (off only for explicitly configured test servers).
    verify: bool = True

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


def relay_target(url: str | None = None) -> SmtpTarget:
    parts = urlsplit(url or get_settings().smtp_url)
    security = {
        "smtp": SmtpSecurity.NONE,
        "smtp+starttls": SmtpSecurity.STARTTLS,
        "smtps": SmtpSecurity.TLS,
    }[parts.scheme]
    default_port = {SmtpSecurity.NONE: 25, SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465}
    return SmtpTarget(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or default_port[security],
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def target_for(company: MailSettings) -> SmtpTarget:
    """The SMTP server of a company or subsidiary (mail_settings.server_owner chooses
    which) when it has one, else the platform relay."""
    if not company.smtp_host:
        return relay_target()
    security = company.smtp_security or SmtpSecurity.STARTTLS
    default_port = {SmtpSecurity.NONE: 25, SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465}
    password = (
        decrypt_secret(company.smtp_password_encrypted)
        if company.smtp_password_encrypted
        else None
    )
    return SmtpTarget(
        host=company.smtp_host,
        port=company.smtp_port or default_port[security],
        security=security,
        username=company.smtp_username,
        password=password,
    )


class Outcome(StrEnum):
    SENT = "SENT"
    TEMPORARY = "TEMPORARY"
    PERMANENT = "PERMANENT"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str


def _words(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def classify(exc: BaseException, target: SmtpTarget) -> SendResult:
    """Turn an SMTP failure into words a recruiter can act on, and temporary vs permanent."""
    where = f"the mail server {target.describe()}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0]
        perm = all(r.code >= 500 for r in exc.recipients)
        text = "; ".join(f"{r.recipient}: {_words(r.code, r.message)}" for r in exc.recipients)
        return SendResult(Outcome.PERMANENT if perm else Outcome.TEMPORARY,
                          f"{where} refused the recipient ({text})" if first else text)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SendResult(Outcome.PERMANENT,
                          f"{where} refused the login: {_words(exc.code, exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        kind = Outcome.PERMANENT if exc.code >= 500 else Outcome.TEMPORARY
        return SendResult(kind, f"{where} refused the sender: {_words(exc.code, exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        kind = Outcome.PERMANENT if exc.code >= 500 else Outcome.TEMPORARY
        return SendResult(kind, f"{where} answered {_words(exc.code, exc.message)}")
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
        return SendResult(Outcome.TEMPORARY, f"{where} did not answer in time")
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, ConnectionError)):
        return SendResult(Outcome.TEMPORARY, f"could not reach {where}: {exc}")
    return SendResult(Outcome.TEMPORARY, f"sending through {where} failed: {exc!r}")


async def _transaction(client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str],
                       data: bytes) -> dict[str, tuple[int, str]]:
    """MAIL, RCPT for each recipient, DATA: aiosmtplib's sendmail for plain addresses,
    without its parsing of each address as a header (a tenth of a bulk worker's time).
    Same outcomes: the sender or every recipient refused raises, the transaction is reset
    after a refusal, and the refused copies are returned."""
    try:
        reply = await client.execute_command(b"MAIL", b"FROM:<" + sender.encode() + b">")
        if reply.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for recipient in recipients:
            reply = await client.execute_command(b"RCPT", b"TO:<" + recipient.encode() + b">")
            if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                refused.append(aiosmtplib.SMTPRecipientRefused(reply.code, reply.message,
                                                               recipient))
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        await client.data(data)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()
        raise
    return {r.recipient: (r.code, r.message) for r in refused}


class _Pool:
    """Up to `size` open connections to one server, handed out one at a time."""

    def __init__(self, target: SmtpTarget, size: int) -> None:
        self.target = target
        self.idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self.sem = asyncio.Semaphore(size)

    async def _connect(self) -> aiosmtplib.SMTP:
        t = self.target
        s = get_settings()
        tls_context = None
        if t.security != SmtpSecurity.NONE and s.smtp_ca_file:
            tls_context = ssl.create_default_context(cafile=str(s.smtp_ca_file))
        if not t.verify:
            tls_context = ssl.create_default_context()
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
        client = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            use_tls=t.security == SmtpSecurity.TLS,
            start_tls=t.security == SmtpSecurity.STARTTLS,
            validate_certs=t.verify,
            tls_context=tls_context,
            local_hostname=s.mail_domain,
            timeout=s.smtp_timeout_seconds,
        )
        await client.connect()
        if t.username:
            await client.login(t.username, t.password or "")
        return client

    async def _checked_out(self) -> aiosmtplib.SMTP:
        """An open connection: the one used last, or a new one. A connection that sat idle
        for a while is probed with RSET first (the server may have dropped it); one used a
        moment ago is not, which spares a round trip per mail in a bulk send."""
        while self.idle:
            client, last_used = self.idle.pop()
            if not client.is_connected:
                continue
            if time.monotonic() - last_used < IDLE_PROBE_SECONDS:
                return client
            try:
                await client.rset()
                return client
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        return await self._connect()

    def _check_in(self, client: aiosmtplib.SMTP) -> None:
        self.idle.append((client, time.monotonic()))

    async def send(self, envelope: Envelope) -> dict[str, tuple[int, str]]:
        async with self.sem:
            client = await self._checked_out()
            try:
                refused = await self._send_on(client, envelope)
            except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
                # The server answered (the transaction has been reset): the connection
                # itself is still good.
                self._check_in(client)
                raise
            except BaseException:
                client.close()
                raise
            self._check_in(client)
            return refused

    @staticmethod
    async def _send_on(client: aiosmtplib.SMTP,
                       envelope: Envelope) -> dict[str, tuple[int, str]]:
        if envelope.data is not None and not client.is_ehlo_or_helo_needed and all(
                is_plain_address(a) for a in (envelope.mail_from, *envelope.recipients)):
            return await _transaction(client, envelope.mail_from, envelope.recipients,
                                      envelope.data)
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
        while self.idle:
            client, _ = self.idle.pop()
            try:
                await client.quit()
            except Exception:
                client.close()


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

    async def send(self, target: SmtpTarget, envelope: Envelope,
                   primary: Sequence[str] = ()) -> SendResult:
        try:
            refused = await self.pool(target).send(envelope)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            return classify(exc, target)
        primary_l = {p.lower() for p in primary}
        hit = {r: v for r, v in refused.items() if r.lower() in primary_l}
        if hit:
            perm = all(code >= 500 for code, _ in hit.values())
            text = "; ".join(f"{r}: {_words(c, m)}" for r, (c, m) in hit.items())
            return SendResult(Outcome.PERMANENT if perm else Outcome.TEMPORARY,
                              f"the mail server {target.describe()} refused the recipient "
                              f"({text})")
        detail = f"accepted by {target.describe()}"
        if refused:
            detail += "; refused copies: " + "; ".join(
                f"{r}: {_words(c, m)}" for r, (c, m) in refused.items()
            )
        return SendResult(Outcome.SENT, detail)

    async def close(self) -> None:
        for p in self.pools.values():
            await p.close()
        self.pools.clear()
