"""Fixtures as a plugin: the REAL inbound gateway on an ephemeral port, an SMTP client
that reports the codes it got, and rows for an invited interview."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
import pytest


@pytest.fixture
async def gateway(db: Any) -> AsyncIterator[Any]:
    from inbound.server import start_server

    g = await start_server("127.0.0.1", 0)
    try:
        yield g
    finally:
        g.close()
        await g.wait_closed(grace=10)


@dataclass
class Delivery:
    rcpt_codes: dict[str, int] = field(default_factory=dict)
    data_code: int | None = None
    data_message: str = ""

    @property
    def code(self) -> int:
        """DATA's code, or the first RCPT refusal when no recipient was accepted."""
        if self.data_code is not None:
            return self.data_code
        return next(iter(self.rcpt_codes.values()))


class SmtpSession:
    """One SMTP connection that sends many mails (RSET between), recording every code."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=timeout,
                                      local_hostname="client.test", start_tls=False)

    async def __aenter__(self) -> SmtpSession:
        await self.client.connect()
        await self.client.ehlo()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.client.quit()
        except Exception:
            self.client.close()

    async def send(self, raw: bytes, rcpts: Sequence[str],
                   mail_from: str = "candidate@example.org") -> Delivery:
        result = Delivery()
        if not self.client.is_connected:
            await self.client.connect()
            await self.client.ehlo()
        await self.client.mail(mail_from)
        for rcpt in rcpts:
            try:
                resp = await self.client.rcpt(rcpt)
                result.rcpt_codes[rcpt] = resp.code
            except aiosmtplib.SMTPResponseException as exc:
                result.rcpt_codes[rcpt] = exc.code
        if not any(200 <= c < 300 for c in result.rcpt_codes.values()):
            await self.client.rset()
            return result
        try:
            resp = await self.client.data(raw)
            result.data_code, result.data_message = resp.code, resp.message
        except aiosmtplib.SMTPResponseException as exc:
            result.data_code, result.data_message = exc.code, exc.message
            if self.client.is_connected:
                await self.client.rset()
        return result


async def smtp_send(port: int, raw: bytes | str, rcpts: Sequence[str] | str,
                    mail_from: str = "candidate@example.org") -> Delivery:
    """Deliver one mail over a fresh connection; returns the codes (never raises on 4xx/5xx)."""
    data = raw.encode() if isinstance(raw, str) else raw
    targets = [rcpts] if isinstance(rcpts, str) else list(rcpts)
    async with SmtpSession(port) as s:
        return await s.send(data, targets, mail_from)


@dataclass
class InvitedInterview:
    interview: Any
    candidate: Any
    application: Any
    invitation: Any  # the SENT invitation message

    @property
    def organizer_address(self) -> str:
        from core.security import signed_address

        return signed_address("i", self.interview.id)

    @property
    def reply_address(self) -> str:
        from core.security import signed_address

        return signed_address("r", self.invitation.id)

    @property
    def bounce_address(self) -> str:
        from core.security import signed_address

        return signed_address("b", self.invitation.id)


async def make_interview(tenant: Any, *, uid: str | None = None, email: str = "nina@example.org",
                         sequence: int = 0, invitation_sent: bool = True,
                         cancelled: bool = False) -> InvitedInterview:
    """An interview as if its invitation went out: rows inserted directly with the models."""
    from core.models import Application, Candidate, Interview, Message, Position
    from core.models.enums import MessageKind, MessageStatus

    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="de Vries", email=email)
    pos = await Position.create(company_id=tenant.company.id, title="Backend Engineer")
    app = await Application.create(company_id=tenant.company.id, candidate_id=cand.id,
                                   position_id=pos.id)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    iv = await Interview.create(
        company_id=tenant.company.id, application_id=app.id, title="Interview Backend Engineer",
        starts_at=start, ends_at=start + timedelta(hours=1), timezone="Europe/Amsterdam",
        organizer_id=tenant.employee.id, uid=uid or f"{uuid.uuid4()}@mail.test",
        sequence=sequence, invitation_sent=invitation_sent, cancelled=cancelled,
    )
    mid = uuid.uuid4()
    invitation = await Message.create(
        id=mid, company_id=tenant.company.id, candidate_id=cand.id, application_id=app.id,
        interview_id=iv.id, sender_id=tenant.employee.id, kind=MessageKind.INTERVIEW_INVITATION,
        status=MessageStatus.SENT, from_name="Ada Admin", from_address="recruiting@mail.test",
        to_addrs=[email], subject="Invitation: Interview Backend Engineer", body="Join us",
        rfc_message_id=f"{mid.hex}@mail.test", sent_at=datetime.now(UTC), attempts=1,
    )
    return InvitedInterview(iv, cand, app, invitation)
