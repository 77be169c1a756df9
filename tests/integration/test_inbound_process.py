"""The gateway's life: shutdown finishes DATA in progress; `recruitmail inbound` as a real
process serves mail and exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from core.models import InboundEmail, Interview
from core.models.enums import AttendeeResponse
from tests.support.inbound import make_interview, smtp_send
from tests.support.inbound_mail import calendar_mail, reply_ics
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_shutdown_finishes_data_in_progress(db, tenant, monkeypatch) -> None:
    from inbound import handler as handler_module
    from inbound.server import start_server

    inv = await make_interview(tenant)
    real = handler_module.deliver
    entered = asyncio.Event()

    async def slow(**kwargs: Any) -> Any:
        entered.set()
        await asyncio.sleep(0.5)
        return await real(**kwargs)

    monkeypatch.setattr(handler_module, "deliver", slow)
    gw = await start_server("127.0.0.1", 0)
    port = gw.port
    raw = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org", "ACCEPTED"))
    sending = asyncio.create_task(smtp_send(port, raw, inv.organizer_address))
    await asyncio.wait_for(entered.wait(), 10)
    gw.close()  # stop accepting while the mail is being stored
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await gw.wait_closed(grace=10)
    res = await sending
    assert res.code == 250
    iv = await Interview.get(id=inv.interview.id)
    assert iv.candidate_response == AttendeeResponse.ACCEPTED
    assert await InboundEmail.all().count() == 1


@pytest.mark.slow
async def test_inbound_process_serves_and_stops_on_sigterm(db, tenant) -> None:
    inv = await make_interview(tenant)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "recruitmail", "inbound", "--host", "127.0.0.1", "--port", str(port),
        cwd=str(ROOT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the gateway process never listened")
        raw = calendar_mail(reply_ics(inv.interview.uid, "nina@example.org", "DECLINED",
                                      comment="Sorry"))
        assert (await smtp_send(port, raw, inv.organizer_address)).code == 250
        assert (await smtp_send(port, raw, "x@elsewhere.example")).code == 550
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 20)
        _out, err = await proc.communicate()
        assert rc == 0, err.decode(errors="replace")[-2000:]
        assert b"inbound gateway stopped" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    iv = await Interview.get(id=inv.interview.id)
    assert iv.candidate_response == AttendeeResponse.DECLINED and iv.candidate_comment == "Sorry"
