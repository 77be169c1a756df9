"""Fixtures as a plugin: SMTP sink, a company with a token, an in-process worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.sink import Sink, start_sink


@pytest.fixture
async def sink(db: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sink]:
    """The platform relay: a real aiosmtpd server on an ephemeral port."""
    from core.settings import reset_settings

    s = await start_sink()
    monkeypatch.setenv("RECRUITMAIL_SMTP_URL", s.url)
    reset_settings()
    try:
        yield s
    finally:
        await s.close()


@dataclass
class Tenant:
    company: Any
    employee: Any
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_tenant(name: str = "Acme Recruiting", admin: str = "Ada Admin",
                      email: str = "ada@acme.example", templates: bool = True) -> Tenant:
    from core.services.admin import create_company

    company, employee, token = await create_company(
        name=name, admin_name=admin, admin_email=email, templates=templates
    )
    return Tenant(company, employee, token)


@pytest.fixture
async def tenant(db: Any) -> Tenant:
    return await make_tenant()


@pytest.fixture
async def other_tenant(db: Any) -> Tenant:
    return await make_tenant("Globex", "Gus Globex", "gus@globex.example")


@pytest.fixture
def run_worker(db: Any) -> Callable[..., Awaitable[None]]:
    """Run the real arq worker in-process until the queue is drained (burst mode)."""

    async def run(timeout: float = 20.0) -> None:
        from worker.settings import make_worker

        worker = make_worker(burst=True, handle_signals=False, ctx={"external_db": True},
                             cron_jobs=[], poll_delay=0.05)
        try:
            await asyncio.wait_for(worker.async_run(), timeout)
        finally:
            await worker.close()

    return run


async def drain_tenant(run_worker: Callable[..., Awaitable[None]], tenant: Tenant,
                       timeout: float = 90.0) -> None:
    """Run the worker until no message of the tenant is pending. Redis only wakes the
    workers: when its jobs are lost (another test run's FLUSHDB on the shared test Redis),
    the sweeper finds the due messages in the database, as in production."""
    from core.models import Message
    from core.models.enums import MessageStatus as S
    from worker.jobs import sweep

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await run_worker(timeout=max(1.0, deadline - loop.time()))
        pending = await Message.filter(company_id=tenant.company.id,
                                       status__in=[S.QUEUED, S.SENDING, S.SCHEDULED]).count()
        if not pending or loop.time() > deadline:
            return
        if not await sweep({}):
            await asyncio.sleep(0.2)
