"""aiosmtpd handler: the SMTP answers of the gateway.

RCPT  550 5.7.1  not our inbound domain (no relaying)
      550 5.1.1  our domain, but not a validly signed address, or its object is gone
      452 4.5.3  too many recipients in one transaction
      451 4.3.0  we could not check (database down)
      250 2.1.5  accepted
DATA  552        over the size cap (aiosmtpd, from data_size_limit)
      500        a line longer than the SMTP limit (aiosmtpd)
      451 4.3.0  a fault of ours (database, bug, timeout): the sender retries
      250 2.0.0  only after every recipient's effect and copy are committed

Malformed content never causes an error answer: it is accepted, kept and marked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from core.services.inbound import InboundCopy
from inbound.parsing import parse_mail
from inbound.routing import deliver, route_for, target_exists

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 20
PROCESS_TIMEOUT = 120.0

RELAY_DENIED = "550 5.7.1 Relaying denied: this server accepts mail only for {domain}"
NO_SUCH_USER = "550 5.1.1 No such recipient here"
TOO_MANY = "452 4.5.3 Too many recipients"
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
ACCEPTED_RCPT = "250 2.1.5 Recipient OK"
ACCEPTED = "250 2.0.0 Message accepted"


class InboundHandler:
    def __init__(self, domain: str) -> None:
        self.domain = domain.lower()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- shutdown support: DATA in progress is finished, not cut ---------------------------

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def wait_idle(self, grace: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    # -- SMTP hooks ---------------------------------------------------------------------

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        _local, at, domain = address.rpartition("@")
        if not at or domain.strip().lower().rstrip(".") != self.domain:
            return RELAY_DENIED.format(domain=self.domain)
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY
        route = route_for(address)
        if route is None:
            return NO_SUCH_USER
        try:
            exists = await target_exists(route)
        except Exception:
            log.exception("could not check recipient %s", address)
            return TRY_LATER
        if not exists:
            return NO_SUCH_USER
        if address.lower() not in (a.lower() for a in envelope.rcpt_tos):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return ACCEPTED_RCPT

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._in_flight += 1
        self._idle.clear()
        try:
            return await asyncio.wait_for(self._process(envelope), PROCESS_TIMEOUT)
        except TimeoutError:
            log.error("processing an inbound mail took longer than %ss", PROCESS_TIMEOUT)
            return TRY_LATER
        except Exception:
            log.exception("inbound mail from %r could not be stored", envelope.mail_from)
            return TRY_LATER
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s: %s", error.__class__.__name__, error)
        return TRY_LATER

    async def _process(self, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        raw = bytes(raw)
        # Parsing is CPU work on hostile input: keep it off the loop that serves sessions.
        parsed = await asyncio.to_thread(parse_mail, raw)
        mail_from = envelope.mail_from or ""
        for rcpt in list(envelope.rcpt_tos):
            route = route_for(rcpt)
            if route is None:  # cannot happen: RCPT checked it; never drop silently
                continue
            result = await deliver(parsed=parsed, route=route,
                                   copy=InboundCopy(mail_from=mail_from, rcpt=rcpt, raw=raw))
            log.info("inbound mail to %s: %s (%s)", route.kind, result.outcome.value,
                     _short(result.detail))
        return ACCEPTED


def _short(text: Any) -> str:
    value = str(text)
    return value if len(value) <= 200 else value[:197] + "..."
