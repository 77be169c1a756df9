"""The SMTP gateway process: aiosmtpd on the current event loop (the ORM's loop).

``start_server`` listens and returns a ``Gateway`` (``.port``, ``close()``,
``wait_closed()``); ``serve_forever`` is the ``recruitmail inbound`` process: database
up, listen, and on SIGTERM/SIGINT stop accepting, let DATA in progress finish (its
sender gets its answer), close the remaining sessions and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import weakref

from aiosmtpd.smtp import SMTP

from core.settings import SettingsError, get_settings
from inbound.handler import InboundHandler

log = logging.getLogger(__name__)

SESSION_TIMEOUT = 300.0  # idle seconds before aiosmtpd drops a session (RFC 5321 4.5.3.2.7)
SHUTDOWN_GRACE = 30.0  # how long DATA in progress may take at shutdown


class GatewaySMTP(SMTP):
    # RFC 5321 allows 1000 octets per line, but sloppy senders exceed it; refusing their
    # mail (500) would bounce a candidate's reply, so lines up to 16 KiB are read.
    line_length_limit = 16 * 1024


class Gateway:
    """A listening gateway; close() stops accepting, wait_closed() drains and disconnects."""

    def __init__(self, server: asyncio.Server, handler: InboundHandler,
                 sessions: weakref.WeakSet[SMTP]) -> None:
        self.server = server
        self.handler = handler
        self._sessions = sessions

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        return str(self.server.sockets[0].getsockname()[0])

    def close(self) -> None:
        """Stop accepting connections; sessions in progress continue."""
        self.server.close()

    async def wait_closed(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Finish DATA in progress (up to `grace` seconds), then end every session."""
        if not await self.handler.wait_idle(grace):
            log.warning("%d inbound mails still in progress at shutdown; their senders will retry",
                        self.handler.in_flight)
        for session in list(self._sessions):
            transport = session.transport
            if transport is not None:
                transport.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 5)
        await asyncio.sleep(0)


def _tls_context() -> ssl.SSLContext | None:
    """The STARTTLS context from RECRUITMAIL_INBOUND_TLS_CERT/_KEY, or None (plain SMTP)."""
    settings = get_settings()
    if not settings.inbound_tls_cert and not settings.inbound_tls_key:
        return None
    if not (settings.inbound_tls_cert and settings.inbound_tls_key):
        raise SettingsError("RECRUITMAIL_INBOUND_TLS_CERT and RECRUITMAIL_INBOUND_TLS_KEY "
                            "go together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(settings.inbound_tls_cert, settings.inbound_tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"RECRUITMAIL_INBOUND_TLS_CERT/_KEY: {exc}") from exc
    return ctx


async def start_server(host: str, port: int) -> Gateway:
    """Listen on host:port (0 = an ephemeral port) on the running loop."""
    settings = get_settings()
    loop = asyncio.get_running_loop()
    handler = InboundHandler(settings.inbound_domain)
    sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
    tls = _tls_context()

    def factory() -> SMTP:
        smtp = GatewaySMTP(
            handler,
            hostname=settings.inbound_domain,  # no FQDN lookup per connection
            ident="recruitmail inbound",
            data_size_limit=settings.inbound_max_bytes,
            enable_SMTPUTF8=True,
            timeout=SESSION_TIMEOUT,
            tls_context=tls,  # STARTTLS offered when configured; never required
            require_starttls=False,
            loop=loop,
        )
        sessions.add(smtp)
        return smtp

    server = await loop.create_server(factory, host=host, port=port)
    gateway = Gateway(server, handler, sessions)
    log.info("inbound SMTP gateway listening on %s:%s for %s", gateway.host, gateway.port,
             settings.inbound_domain)
    return gateway


async def serve_forever(host: str, port: int) -> None:
    """`recruitmail inbound`: serve until SIGTERM/SIGINT, then shut down cleanly."""
    from core.db import close_db, init_db
    from core.redis import close_redis

    ctx = await init_db()
    try:
        gateway = await start_server(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            log.info("inbound gateway stopping: no new connections, finishing mail in progress")
            gateway.close()
            await gateway.wait_closed()
    finally:
        with contextlib.suppress(Exception):
            await close_redis()
        await close_db(ctx)
        log.info("inbound gateway stopped")
