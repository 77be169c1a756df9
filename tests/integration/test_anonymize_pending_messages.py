"""Anonymising a candidate whose messages are still pending: one waiting in a bulk is
cancelled with the operation's counters, one being sent is reported and cleared by a
second run."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from core.models import BulkOperation, Candidate, MessageEvent
from core.models.enums import BulkOperationKind, BulkOperationState, MessageKind, MessageStatus
from core.services import delivery, messaging
from core.services.anonymize import anonymize_candidates
from tests.support.personal_data import SECRETS, ZEB_EMAIL, _database_views, _found

if TYPE_CHECKING:  # a EnvInfo imported for real would be collected as a test class
    from tests.conftest import EnvInfo
    from tests.support.fixtures import Tenant

S = MessageStatus


async def test_waiting_bulk_message_is_cancelled_with_counters(tenant: Tenant, db: EnvInfo) -> None:
    cid = tenant.company.id
    cand = await Candidate.create(company_id=cid, first_name="Zebulon", last_name="Quixotic",
                                  email=ZEB_EMAIL)
    bulk = await BulkOperation.create(company_id=cid, kind=BulkOperationKind.EMAIL, total=1,
                                      queued=1, created_by=tenant.employee)
    company = tenant.company
    msg = await messaging.store_one(messaging.Draft(
        company=company, candidate=cand, kind=MessageKind.BULK, subject="Kumquat",
        body="marmalade-ostrich", sender=tenant.employee, bulk_operation_id=bulk.id))
    assert msg.status == S.QUEUED

    result = await anonymize_candidates([cand.id, uuid.uuid4()], company_id=cid)

    assert result.messages_cancelled == 1 and len(result.missing) == 1
    await msg.refresh_from_db()
    assert msg.status == S.CANCELLED and msg.body == ""
    await bulk.refresh_from_db()
    # Its only message was cancelled, so the operation is (recording.refresh_bulk_state).
    assert bulk.queued == 0 and bulk.state == BulkOperationState.CANCELLED
    assert [e.status for e in await MessageEvent.filter(message_id=msg.id).order_by("id")] == [
        S.QUEUED, S.CANCELLED]
    # The worker that finds the job later sends nothing.
    assert await delivery.claim(msg.id) is None


async def test_message_being_sent_is_reported_and_a_second_run_clears_it(
    tenant: Tenant, db: EnvInfo
) -> None:
    cid = tenant.company.id
    cand = await Candidate.create(company_id=cid, first_name="Zebulon", last_name="Quixotic",
                                  email=ZEB_EMAIL)
    msg = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                       subject="Kumquat", body="marmalade-ostrich")
    assert await delivery.claim(msg.id) is not None  # a worker is sending it right now

    first = await anonymize_candidates([cand.id], company_id=cid)

    assert first.in_flight_message_ids == [msg.id] and first.messages_cancelled == 0
    await msg.refresh_from_db()
    assert msg.status == S.SENDING and msg.body == ""  # the worker has its copy already
    # The worker finishes and writes the relay's answer, which may quote the address.
    await delivery.mark_sent(msg.id, detail=f"250 2.0.0 queued for <{ZEB_EMAIL}>")
    second = await anonymize_candidates([cand.id], company_id=cid)
    assert second.in_flight_message_ids == [] and second.newly_anonymized == 0
    await msg.refresh_from_db()
    assert msg.status == S.SENT
    assert [(e.status, e.detail) for e in
            await MessageEvent.filter(message_id=msg.id).order_by("id")] == [
        (S.QUEUED, None), (S.SENDING, None), (S.SENT, None)]
    assert _found(_database_views(db), SECRETS) == []

