"""The message life on real parts: SQLite/PostgreSQL, Redis, arq worker, aiosmtpd sink."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core.errors import ErrorCode, InputError
from core.models import Candidate, Message, MessageEvent
from core.models.enums import MessageStatus as S
from core.services import delivery, messaging, recording
from worker.jobs import sweep


async def _candidate(tenant, email="nina@example.org", first="Nina", last="de Vries"):
    return await Candidate.create(company_id=tenant.company.id, first_name=first,
                                  last_name=last, email=email, language="nl",
                                  timezone="Europe/Amsterdam")


async def _history(msg_id) -> list[str]:
    return [e.status.value for e in await MessageEvent.filter(message_id=msg_id).order_by("id")]


async def test_send_reaches_sink_with_headers(tenant, sink, run_worker):
    cand = await _candidate(tenant)
    msg = await messaging.send_message(
        employee=tenant.employee, candidate_id=cand.id, subject="Hello Nina",
        body="Welcome <b>aboard</b>", cc=["Boss@Acme.example"], bcc=["hidden@acme.example"],
    )
    assert msg.status == S.QUEUED
    await run_worker()
    [mail] = await sink.wait_for(1)
    m = mail.message
    assert m["From"].addresses[0].display_name == "Ada Admin"
    assert m["From"].addresses[0].addr_spec == "recruiting@mail.test"
    assert m["To"] == "nina@example.org"
    assert m["Cc"] == "Boss@acme.example"
    assert "Bcc" not in m
    assert "hidden@acme.example" in mail.rcpt_tos
    assert m["Message-ID"] == f"<{msg.rfc_message_id}>"
    assert m["Date"]
    assert mail.mail_from.startswith("b-") and mail.mail_from.endswith("@in.mail.test")
    html = m.get_body(("html",)).get_content()
    assert "&lt;b&gt;aboard&lt;/b&gt;" in html
    await msg.refresh_from_db()
    assert msg.status == S.SENT and msg.sent_at is not None
    assert await _history(msg.id) == ["QUEUED", "SENDING", "SENT"]


async def test_5xx_fails_with_reason_then_retry_sends(tenant, sink, run_worker):
    cand = await _candidate(tenant)
    sink.handler.refuse_rcpt["nina@example.org"] = "550 5.1.1 <nina@example.org>: mailbox unknown"
    msg = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                       subject="Hi", body="Text")
    await run_worker()
    await msg.refresh_from_db()
    assert msg.status == S.FAILED
    assert "550 5.1.1" in msg.error and "mailbox unknown" in msg.error
    assert sink.received == []
    sink.handler.refuse_rcpt.clear()
    again = await messaging.retry_message(employee=tenant.employee, message_id=msg.id)
    assert again.status == S.QUEUED
    await run_worker()
    await sink.wait_for(1)
    await msg.refresh_from_db()
    assert msg.status == S.SENT
    assert await _history(msg.id) == ["QUEUED", "SENDING", "FAILED", "QUEUED", "SENDING", "SENT"]


async def test_4xx_is_retried_automatically(tenant, sink, run_worker):
    cand = await _candidate(tenant)
    sink.handler.data_reply = "451 4.3.0 Try again later"
    msg = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                       subject="Hi", body="Text")

    async def heal() -> None:
        while True:
            await asyncio.sleep(0.05)
            m = await Message.get(id=msg.id)
            if m.attempts >= 1 and m.status == S.QUEUED:
                sink.handler.data_reply = None
                return

    healer = asyncio.create_task(heal())
    await run_worker()
    await healer
    await msg.refresh_from_db()
    assert msg.status == S.SENT
    assert msg.attempts == 2
    assert len(sink.received) == 1
    assert await _history(msg.id) == ["QUEUED", "SENDING", "QUEUED", "SENDING", "SENT"]


async def test_4xx_exhausted_fails(tenant, sink, run_worker, monkeypatch):
    from core.settings import reset_settings

    monkeypatch.setenv("RECRUITMAIL_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("RECRUITMAIL_RETRY_BASE_SECONDS", "0.05")
    reset_settings()
    cand = await _candidate(tenant)
    sink.handler.data_reply = "421 4.7.0 Too busy"
    msg = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                       subject="Hi", body="Text")
    await run_worker()
    await msg.refresh_from_db()
    assert msg.status == S.FAILED
    assert "421" in msg.error and "gave up after 2 attempts" in msg.error


async def test_scheduled_then_sent_and_cancelled_never(tenant, sink, run_worker):
    cand = await _candidate(tenant)
    at = recording.now() + timedelta(seconds=1.5)
    keep = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                        subject="Later", body="Text", scheduled_at=at)
    drop = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                        subject="Never", body="Text", scheduled_at=at)
    assert keep.status == S.SCHEDULED
    cancelled = await messaging.cancel_scheduled_message(employee=tenant.employee,
                                                         message_id=drop.id)
    assert cancelled.status == S.CANCELLED
    await run_worker()
    [mail] = await sink.wait_for(1)
    assert mail.message["Subject"] == "Later"
    await keep.refresh_from_db()
    assert keep.status == S.SENT and keep.sent_at >= at
    await drop.refresh_from_db()
    assert drop.status == S.CANCELLED
    with pytest.raises(InputError) as err:
        await messaging.cancel_scheduled_message(employee=tenant.employee, message_id=keep.id)
    assert err.value.errors[0].code == ErrorCode.INVALID_STATE


async def test_flushall_loses_nothing(tenant, sink, run_worker, db):
    from core.redis import get_redis

    cand = await _candidate(tenant)
    now_msgs = [
        await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                     subject=f"Now {i}", body="Text")
        for i in range(3)
    ]
    later = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                         subject="Later", body="Text",
                                         scheduled_at=recording.now() + timedelta(seconds=1))
    await get_redis().flushdb()
    await asyncio.sleep(1.1)
    assert await sweep({}) == 4
    await run_worker()
    await sink.wait_for(4)
    for m in [*now_msgs, later]:
        await m.refresh_from_db()
        assert m.status == S.SENT


async def test_expired_lease_is_resent_with_same_message_id(tenant, sink, run_worker):
    cand = await _candidate(tenant)
    msg = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                       subject="Hi", body="Text")
    claimed = await delivery.claim(msg.id)  # a worker that died mid-send
    assert claimed is not None and claimed.status == S.SENDING
    await Message.filter(id=msg.id).update(lease_until=recording.now() - timedelta(seconds=1))
    assert await sweep({}) == 1
    await run_worker()
    [mail] = await sink.wait_for(1)
    assert mail.message["Message-ID"] == f"<{msg.rfc_message_id}>"
    await msg.refresh_from_db()
    assert msg.status == S.SENT and msg.attempts == 2


async def test_idempotency_key_gives_one_message(tenant, sink, run_worker):
    cand = await _candidate(tenant)
    first = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                         subject="Once", body="Text", idempotency_key="k-1")
    second = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                          subject="Once", body="Text", idempotency_key="k-1")
    assert first.id == second.id
    await run_worker()
    await sink.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(sink.received) == 1
    assert await Message.filter(company_id=tenant.company.id).count() == 1


async def test_bad_input_writes_nothing(tenant, sink):
    cand = await _candidate(tenant)
    with pytest.raises(InputError) as err:
        await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                     subject="Bad\r\nBcc: x@evil.example", body="Text",
                                     cc=["ok@example.org", "not an address"])
    codes = {(e.code, e.field) for e in err.value.errors}
    assert (ErrorCode.INVALID_INPUT, ("input", "subject")) in codes
    assert (ErrorCode.INVALID_EMAIL, ("input", "cc", "1")) in codes
    assert await Message.all().count() == 0
    assert await MessageEvent.all().count() == 0
