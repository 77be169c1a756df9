"""A company mail server as they are in the wild, on aiosmtpd: it takes so many mails a
window (past that it answers 451 4.7.0), so many connections at once (past that it greets
with 432 4.3.2 and hangs up, as Microsoft 365 does), may answer 421 4.7.0 to everything for
a while, and may require a login. It records what a test needs to check from outside:
when each mail arrived, the most connections it ever had open, what it refused."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.sink import Received, Sink, SinkHandler


@dataclass
class Limits:
    per_window: int | None = None
    window_seconds: float = 60.0
    max_connections: int | None = None
    # Until this time.monotonic(), every MAIL is answered with `busy_reply`.
    busy_until: float = 0.0
    busy_reply: str = "421 4.7.0 Temporary server error, please try again later"


@dataclass
class Stats:
    open_now: int = 0
    max_open: int = 0
    connections: int = 0
    refused_connections: int = 0
    rate_refusals: int = 0
    busy_refusals: int = 0
    arrivals: list[float] = field(default_factory=list)  # monotonic, one per mail


class LimitedHandler(SinkHandler):
    def __init__(self, limits: Limits, stats: Stats) -> None:
        super().__init__()
        self.limits = limits
        self.stats = stats

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if time.monotonic() < self.limits.busy_until:
            self.stats.busy_refusals += 1
            return self.limits.busy_reply
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        lim = self.limits
        now = time.monotonic()
        if lim.per_window is not None:
            recent = [t for t in self.stats.arrivals if t > now - lim.window_seconds]
            if len(recent) >= lim.per_window:
                self.stats.rate_refusals += 1
                return "451 4.7.0 Message rate limit exceeded, slow down"
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            self.stats.arrivals.append(now)
        return reply


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP protocol that counts its concurrent connections."""

    def __init__(self, handler: LimitedHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._stats = handler.stats
        self._limits = handler.limits
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        st = self._stats
        st.connections += 1
        if self._limits.max_connections is not None and st.open_now >= self._limits.max_connections:
            self._refused = True
            st.refused_connections += 1
            transport.write(b"432 4.3.2 Concurrent connections limit exceeded\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        st.open_now += 1
        st.max_open = max(st.max_open, st.open_now)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._stats.open_now -= 1
        super().connection_lost(exc)


class LimitedServer(Sink):
    def __init__(self, handler: LimitedHandler, server: asyncio.AbstractServer,
                 port: int) -> None:
        super().__init__(handler, server, port)
        self.limited = handler

    @property
    def stats(self) -> Stats:
        return self.limited.stats

    @property
    def limits(self) -> Limits:
        return self.limited.limits

    def max_in_window(self, seconds: float) -> int:
        """The most mails that arrived within any `seconds`-long window."""
        times = sorted(self.stats.arrivals)
        best = 0
        j = 0
        for i, t in enumerate(times):
            while times[j] <= t - seconds:
                j += 1
            best = max(best, i - j + 1)
        return best

    @property
    def mails(self) -> list[Received]:
        return self.handler.received


async def start_limited(limits: Limits | None = None, *,
                        credentials: tuple[str, str] | None = None,
                        **smtp_kwargs: Any) -> LimitedServer:
    handler = LimitedHandler(limits or Limits(), Stats())
    loop = asyncio.get_running_loop()

    def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (credentials is not None and isinstance(auth_data, LoginPassword)
              and (auth_data.login.decode(), auth_data.password.decode()) == credentials)
        return AuthResult(success=ok, handled=False)

    if credentials is not None:
        smtp_kwargs.setdefault("authenticator", authenticator)
        smtp_kwargs.setdefault("auth_required", True)
        smtp_kwargs.setdefault("auth_require_tls", False)

    def factory() -> SMTP:
        return LimitedSMTP(handler, hostname="mx.company.test", loop=loop, **smtp_kwargs)

    server = await loop.create_server(factory, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    return LimitedServer(handler, server, port)
