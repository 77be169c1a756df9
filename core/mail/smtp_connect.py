"""Opening a connection to an SMTP server: the platform relay, or a company's own server,
which is reached only at an address core.services.smtp_guard allowed a moment before."""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiosmtplib

from core.models.companies import MailSettings
from core.models.enums import SmtpSecurity
from core.security import decrypt_secret
from core.services import pacing, smtp_guard
from core.settings import get_settings


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: SmtpSecurity = SmtpSecurity.NONE
    username: str | None = None
    password: str | None = None
    # Verify the server certificate (off only for explicitly configured test servers).
    verify: bool = True
    # A company's own server: checked by core.services.smtp_guard before each connection,
    # its connections counted across processes under `owner` (core.services.pacing).
    owner: str | None = None
    max_connections: int | None = None

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


def relay_target(url: str | None = None) -> SmtpTarget:
    return _relay_target(url or get_settings().smtp_url)


@functools.lru_cache(maxsize=16)
def _relay_target(url: str) -> SmtpTarget:  # once per URL, not once per mail
    parts = urlsplit(url)
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
    """The own SMTP server of a company or subsidiary (core.services.mail_settings chooses
    whose) when configured, else the platform relay."""
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
        owner=pacing.owner_key(company),
        max_connections=company.smtp_max_connections or None,
    )


async def open_socket(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to a company's server at an address the guard allowed just now
    (the address connected to is the one checked: no second DNS answer in between)."""
    checked = await smtp_guard.check(host, port)
    loop = asyncio.get_running_loop()
    last: Exception | None = None
    for address in checked.addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
            return sock
        except (OSError, TimeoutError) as exc:
            sock.close()
            last = exc
    if isinstance(last, TimeoutError):
        raise aiosmtplib.SMTPConnectTimeoutError(f"Timed out connecting to {host} on port {port}")
    raise aiosmtplib.SMTPConnectError(f"Error connecting to {host} on port {port}: {last}")


def make_client(t: SmtpTarget, sock: socket.socket | None = None) -> aiosmtplib.SMTP:
    s = get_settings()
    tls_context = None
    if t.security != SmtpSecurity.NONE and s.smtp_ca_file:
        tls_context = ssl.create_default_context(cafile=str(s.smtp_ca_file))
    if not t.verify:
        tls_context = ssl.create_default_context()
        tls_context.check_hostname = False
        tls_context.verify_mode = ssl.CERT_NONE
    return aiosmtplib.SMTP(
        hostname=t.host,
        port=None if sock is not None else t.port,
        sock=sock,
        use_tls=t.security == SmtpSecurity.TLS,
        start_tls=t.security == SmtpSecurity.STARTTLS,
        validate_certs=t.verify,
        tls_context=tls_context,
        local_hostname=s.mail_domain,
        timeout=s.smtp_timeout_seconds,
    )


