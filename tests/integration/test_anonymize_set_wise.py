"""Anonymising many candidates at once: set-wise, in a few statements per chunk, and only
the company's own candidates."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import pytest

from core.models import Application, Candidate, Message, MessageEvent, Position
from core.models.enums import ApplicationStatus, MessageKind, MessageStatus
from core.services import recording
from core.services.anonymize import anonymize_candidates
from tests.support.personal_data import _database_views, _found

if TYPE_CHECKING:  # a EnvInfo imported for real would be collected as a test class
    from tests.conftest import EnvInfo
    from tests.support.fixtures import Tenant

S = MessageStatus


async def test_many_candidates_set_wise_and_only_the_company(
    tenant: Tenant, other_tenant: Tenant, db: EnvInfo, caplog: pytest.LogCaptureFixture
) -> None:
    cid = tenant.company.id
    n = 620  # more than one chunk
    pos = await Position.create(company_id=cid, title="Support")
    cands = [Candidate(id=uuid.uuid4(), company_id=cid, first_name=f"Zebulon{i}",
                       last_name="Quixotic", email=f"zebulon{i}@example.org") for i in range(n)]
    await Candidate.bulk_create(cands, batch_size=500)
    await Application.bulk_create(
        [Application(company_id=cid, candidate_id=c.id, position_id=pos.id,
                     status=ApplicationStatus.REJECTED, rejected_at=recording.now(),
                     rejection_note=f"{c.first_name}: wombat") for c in cands], batch_size=500)
    now = recording.now()
    msgs = [Message(id=uuid.uuid4(), company_id=cid, candidate_id=c.id, kind=MessageKind.REJECTION,
                    status=S.SENT, from_name="Ada Admin", from_address="recruiting@mail.test",
                    to_addrs=[c.email], subject="Kumquat", body=f"Dear {c.first_name}",
                    rfc_message_id=f"{uuid.uuid4().hex}@mail.test", sent_at=now, created_at=now)
            for c in cands]
    await Message.bulk_create(msgs, batch_size=500)
    await MessageEvent.bulk_create(
        [MessageEvent(message_id=m.id, status=S.SENT, at=now, detail=f"250 ok {m.to_addrs[0]}")
         for m in msgs], batch_size=500)
    other = await Candidate.create(company_id=other_tenant.company.id, first_name="Zebulon",
                                   last_name="Elsewhere", email="zebulon@globex.example")

    caplog.set_level(logging.DEBUG, logger="tortoise.db_client")
    caplog.clear()
    result = await anonymize_candidates([c.id for c in cands] + [other.id], company_id=cid)
    statements = len([r for r in caplog.records if r.name == "tortoise.db_client"])
    caplog.set_level(logging.WARNING, logger="tortoise.db_client")

    assert result.candidates == n and result.newly_anonymized == n
    assert result.missing == [other.id]
    assert result.messages == n and result.events == n and result.applications == n
    # Set-wise: a few dozen statements per chunk of 500, not a few per candidate.
    assert statements < 60, statements
    assert await Candidate.filter(company_id=cid, anonymized_at__isnull=True).count() == 0
    assert await Candidate.filter(company_id=cid, email__isnull=False).count() == 0
    assert await Message.filter(company_id=cid, status=S.SENT, subject="[anonymized]").count() == n
    assert await MessageEvent.filter(detail__isnull=False).count() == 0
    assert await Application.filter(company_id=cid, rejection_note__isnull=False).count() == 0
    await other.refresh_from_db()
    assert other.email == "zebulon@globex.example" and other.anonymized_at is None
    assert _found(_database_views(db), ["zebulon1@", "wombat", "dear zebulon"]) == []

