"""What the real `recruitmail worker` process records when a mail does not go out: the
server's permanent refusal (FAILED with its words) and a temporary one (QUEUED for a
retry, then SENT). The worker process runs as deployed: on PostgreSQL it opens its own
connection for the per-mail statements beside the ORM's."""

from __future__ import annotations

from core.models import Candidate, Message, MessageEvent
from core.models.enums import MessageStatus as S
from core.services import messaging
from tests.integration.test_processes import _spawn, _stop, _wait


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
