"""Bulk email and bulk rejection at the service level, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core.errors import ErrorCode, InputError
from core.models import Application, BulkOperation, Candidate, Message, Position, RejectionReason
from core.models.enums import (
    ApplicationStatus,
    BulkOperationState,
    MessageStatus,
    TemplateKind,
)
from core.services import bulk, recording
from core.services import templates as tpl_service


async def _applications(tenant, n: int, *, prefix: str = "Cand") -> list[Application]:
    pos = await Position.create(company_id=tenant.company.id, title="Backend Engineer")
    apps = []
    for i in range(n):
        cand = await Candidate.create(company_id=tenant.company.id, first_name=f"{prefix}{i}",
                                      last_name=f"Last{i}", email=f"c{i}@example.org")
        apps.append(await Application.create(company_id=tenant.company.id, candidate=cand,
                                             position=pos))
    return apps


async def _template(tenant, kind=TemplateKind.MESSAGE, body="Hello {{ candidate.first_name }}"):
    return await tpl_service.save_template(
        employee=tenant.employee, name="t", kind=kind,
        subject="About {{ position.title }}", body=body, creating=True)


async def test_bulk_email_personalised(tenant, sink, run_worker):
    apps = await _applications(tenant, 30)
    tpl = await _template(tenant)
    op = await bulk.send_bulk_email(employee=tenant.employee,
                                    application_ids=[a.id for a in apps], template_id=tpl.id)
    assert op.total == 30 and op.state == BulkOperationState.RUNNING
    await run_worker()
    mails = await sink.wait_for(30)
    by_rcpt = {m.rcpt_tos[0]: m.message for m in mails}
    for i in range(30):
        m = by_rcpt[f"c{i}@example.org"]
        assert m.get_body(("plain",)).get_content().startswith(f"Hello Cand{i}")
        assert m["Subject"] == "About Backend Engineer"
    await op.refresh_from_db()
    assert (op.sent, op.failed, op.queued, op.state) == (30, 0, 0, BulkOperationState.COMPLETED)


async def test_one_bad_recipient_stores_nothing(tenant, sink):
    apps = await _applications(tenant, 20)
    await Candidate.filter(id=apps[7].candidate_id).update(last_name=None)
    await Candidate.filter(id=apps[11].candidate_id).update(email=None)
    tpl = await _template(tenant, body="Dear {{ candidate.last_name }}")
    with pytest.raises(InputError) as err:
        await bulk.send_bulk_email(employee=tenant.employee,
                                   application_ids=[a.id for a in apps], template_id=tpl.id)
    fields = {e.field[:3]: e for e in err.value.errors}
    assert ("input", "applicationIds", "7") in fields
    assert fields[("input", "applicationIds", "7")].code == ErrorCode.TEMPLATE_ERROR
    assert "candidate.last_name" in fields[("input", "applicationIds", "7")].message
    assert fields[("input", "applicationIds", "11")].code == ErrorCode.INVALID_EMAIL
    assert await Message.all().count() == 0
    assert await BulkOperation.all().count() == 0


async def test_idempotent_bulk(tenant, sink, run_worker):
    apps = await _applications(tenant, 5)
    kwargs = dict(employee=tenant.employee, application_ids=[a.id for a in apps],
                  subject="Hi {{ candidate.first_name }}", body="Text", idempotency_key="bulk-1")
    first = await bulk.send_bulk_email(**kwargs)
    second = await bulk.send_bulk_email(**kwargs)
    assert first.id == second.id
    await run_worker()
    await sink.wait_for(5)
    await asyncio.sleep(0.2)
    assert len(sink.received) == 5
    assert await BulkOperation.all().count() == 1


async def test_scheduled_bulk_cancelled_sends_nothing(tenant, sink, run_worker):
    apps = await _applications(tenant, 10)
    op = await bulk.send_bulk_email(employee=tenant.employee, application_ids=[a.id for a in apps],
                                    subject="Later", body="Text",
                                    scheduled_at=recording.now() + timedelta(seconds=1))
    assert op.state == BulkOperationState.SCHEDULED
    cancelled = await bulk.cancel_bulk_operation(employee=tenant.employee, bulk_id=op.id)
    assert cancelled.state == BulkOperationState.CANCELLED
    await asyncio.sleep(1.1)
    await run_worker()
    assert sink.received == []
    assert await Message.filter(bulk_operation_id=op.id, status=MessageStatus.CANCELLED).count() == 10


async def test_scheduled_bulk_goes_out_on_time(tenant, sink, run_worker):
    apps = await _applications(tenant, 10)
    at = recording.now() + timedelta(seconds=1)
    op = await bulk.send_bulk_email(employee=tenant.employee, application_ids=[a.id for a in apps],
                                    subject="Later", body="Text", scheduled_at=at)
    await run_worker()
    await sink.wait_for(10)
    await op.refresh_from_db()
    assert op.state == BulkOperationState.COMPLETED and op.sent == 10
    with pytest.raises(InputError):
        await bulk.cancel_bulk_operation(employee=tenant.employee, bulk_id=op.id)


async def test_reject_with_email(tenant, sink, run_worker):
    apps = await _applications(tenant, 8)
    reason = await RejectionReason.create(company_id=tenant.company.id, label="Position filled")
    tpl = await _template(tenant, TemplateKind.REJECTION,
                          body="Dear {{ candidate.first_name }}, {{ rejection.reason }}.")
    op = await bulk.reject_applications(
        employee=tenant.employee, application_ids=[a.id for a in apps], reason_id=reason.id,
        note="Thanks", send_email=True, template_id=tpl.id)
    assert op.total == 8
    assert await Application.filter(status=ApplicationStatus.REJECTED,
                                    rejection_reason_id=reason.id).count() == 8
    await run_worker()
    mails = await sink.wait_for(8)
    texts = sorted(m.message.get_body(("plain",)).get_content().strip() for m in mails)
    assert texts[0].startswith("Dear Cand0, Position filled.")
    with pytest.raises(InputError) as err:
        await bulk.reject_applications(employee=tenant.employee, application_ids=[apps[0].id],
                                       reason_id=reason.id)
    assert err.value.errors[0].code == ErrorCode.INVALID_STATE


async def test_scheduled_bulk_survives_a_redis_flush(tenant, sink, run_worker):
    """Its chunk jobs gone, the sweeper wakes the messages one by one; they still leave as one
    operation (the operation's switch to RUNNING), and all of them go."""
    from core.redis import get_redis
    from worker.jobs import sweep

    apps = await _applications(tenant, 12)
    op = await bulk.send_bulk_email(employee=tenant.employee, application_ids=[a.id for a in apps],
                                    subject="Later", body="Text",
                                    scheduled_at=recording.now() + timedelta(seconds=1))
    await get_redis().flushdb()
    await asyncio.sleep(1.1)
    assert await sweep({}) == 12
    await run_worker()
    await sink.wait_for(12)
    await op.refresh_from_db()
    assert (op.state, op.sent, op.queued) == (BulkOperationState.COMPLETED, 12, 0)
    with pytest.raises(InputError):
        await bulk.cancel_bulk_operation(employee=tenant.employee, bulk_id=op.id)


async def _many_applications(tenant, n: int) -> list[Application]:
    pos = await Position.create(company_id=tenant.company.id, title="Backend Engineer")
    cands = [Candidate(company_id=tenant.company.id, first_name=f"Many{i}", last_name=f"L{i}",
                       email=f"m{i}@example.org") for i in range(n)]
    await Candidate.bulk_create(cands, batch_size=500)
    apps = [Application(company_id=tenant.company.id, candidate_id=c.id, position_id=pos.id)
            for c in cands]
    await Application.bulk_create(apps, batch_size=500)
    return apps


async def test_a_late_bad_recipient_stores_nothing(tenant, sink):
    """When the 600th of 700 recipients cannot be made (and the 651st), nothing is stored:
    no message, event, operation or uploaded attachment; the errors name both, and the
    bulk without them then goes in whole."""
    from core.blobs import blob_path
    from core.models import Document, MessageEvent
    from core.services.documents import stage_bytes

    apps = await _many_applications(tenant, 700)
    await Candidate.filter(id=apps[599].candidate_id).update(email="not an address")
    await Candidate.filter(id=apps[650].candidate_id).update(last_name=None)
    upload = await stage_bytes(b"brochure", filename="brochure.txt", content_type="text/plain")
    with pytest.raises(InputError) as err:
        await bulk.send_bulk_email(
            employee=tenant.employee, application_ids=[a.id for a in apps],
            subject="Hi {{ candidate.first_name }}", body="Dear {{ candidate.last_name }}",
            new_files=[upload])
    fields = {e.field[:3]: e.code for e in err.value.errors}
    assert fields == {("input", "applicationIds", "599"): ErrorCode.INVALID_EMAIL,
                      ("input", "applicationIds", "650"): ErrorCode.TEMPLATE_ERROR}
    assert await Message.all().count() == 0
    assert await MessageEvent.all().count() == 0
    assert await BulkOperation.all().count() == 0
    assert await Document.all().count() == 0
    assert not blob_path(upload.blob_key).exists()

    good = [a for i, a in enumerate(apps) if i not in (599, 650)]
    op = await bulk.send_bulk_email(employee=tenant.employee,
                                    application_ids=[a.id for a in good],
                                    subject="Hi {{ candidate.first_name }}", body="Hello")
    assert op.total == 698
    assert await Message.filter(bulk_operation_id=op.id, status=MessageStatus.QUEUED
                                ).count() == 698
    assert await MessageEvent.all().count() == 698
    subjects = {m.subject for m in await Message.filter(application_id=good[-1].id)}
    assert subjects == {"Hi Many699"}
