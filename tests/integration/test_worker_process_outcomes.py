"""What the real `recruitmail worker` process records when a mail does not go out: the
server's permanent refusal (FAILED with its words), a temporary one (QUEUED for a
retry, then SENT), a scheduled bulk released at its time, a rejection's anonymisation once
its mail is SENT: each a transaction of the worker's. The worker process runs as
deployed: on PostgreSQL it opens its own connection for the per-mail statements beside
the ORM's."""

from __future__ import annotations

from datetime import timedelta

from core.models import Candidate, Message, MessageEvent, RejectionReason
from core.models.enums import BulkOperationState
from core.models.enums import MessageStatus as S
from core.services import bulk, messaging, recording
from tests.integration.test_processes import _applications, _spawn, _stop, _wait


async def _status(msg: Message, *wanted: S) -> bool:
    await msg.refresh_from_db()
    return msg.status in wanted


async def test_refusals_are_recorded_by_the_worker_process(tenant, sink, env):
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="V", email="nina@example.org")
    gone = await Candidate.create(company_id=tenant.company.id, first_name="Otto",
                                  last_name="W", email="gone@example.org")
    sink.handler.refuse_rcpt["gone@example.org"] = "550 5.1.1 No such user here"
    sink.handler.data_reply = "451 4.3.0 Try again in a moment"
    busy = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                        subject="Busy server", body="Text")
    refused = await messaging.send_message(employee=tenant.employee, candidate_id=gone.id,
                                           subject="Nobody there", body="Text")
    proc = _spawn(env, "worker")
    try:
        await _wait(lambda: _status(refused, S.FAILED), what="the refused message FAILED")
        assert "No such user here" in (refused.error or "")

        async def retried() -> bool:
            return await MessageEvent.filter(message_id=busy.id, status=S.QUEUED,
                                             detail__contains="Try again").exists()

        await _wait(retried, what="the temporary refusal recorded for a retry")
        sink.handler.data_reply = None
        await _wait(lambda: _status(busy, S.SENT), what="the retried message SENT")
    finally:
        await _stop(proc)
    assert [m.message["Subject"] for m in sink.received] == ["Busy server"]


async def test_a_scheduled_bulk_goes_at_its_time(tenant, sink, env):
    """A bulk scheduled a moment ahead: the worker process releases the whole operation
    when it is due (SCHEDULED → QUEUED in one transaction) and sends it."""
    apps = await _applications(tenant, 5)
    op = await bulk.send_bulk_email(
        employee=tenant.employee, application_ids=[a.id for a in apps],
        subject="Later, {{ candidate.first_name }}", body="Text",
        scheduled_at=recording.now() + timedelta(seconds=2))
    assert await Message.filter(bulk_operation_id=op.id, status=S.SCHEDULED).count() == 5
    proc = _spawn(env, "worker")
    try:
        async def all_sent() -> bool:
            return await Message.filter(bulk_operation_id=op.id, status=S.SENT).count() == 5

        await _wait(all_sent, what="the scheduled bulk SENT")
    finally:
        await _stop(proc)
    await op.refresh_from_db()
    assert op.state == BulkOperationState.COMPLETED and op.sent == 5
    assert len(sink.received) == 5


async def test_a_rejection_with_anonymisation_through_the_worker_process(tenant, sink, env):
    """Rejected with a rejection mail and anonymisation: once the worker process has the
    mail SENT, it anonymises the candidate."""
    [app] = await _applications(tenant, 1)
    reason = await RejectionReason.create(company_id=tenant.company.id, label="Other hire")
    await bulk.reject_applications(employee=tenant.employee, application_ids=[app.id],
                                   reason_id=reason.id, send_email=True, anonymize=True)
    proc = _spawn(env, "worker")
    try:
        async def anonymised() -> bool:
            cand = await Candidate.get(id=app.candidate_id)
            return cand.anonymized_at is not None

        await _wait(anonymised, what="the candidate anonymised after the mail went out")
    finally:
        await _stop(proc)
    [mail] = sink.received
    assert mail.rcpt_tos == ["c0@example.org"]
    cand = await Candidate.get(id=app.candidate_id)
    assert cand.email != "c0@example.org"
