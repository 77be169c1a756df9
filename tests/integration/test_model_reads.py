"""A bulk mutation's applications read in one statement (core/model_reads.py, PostgreSQL):
the same instances the ORM builds, only the company's own, and they behave as ORM rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise import connections

from core.model_reads import applications_with_candidates
from core.models import Application, Candidate, Position
from core.models.enums import ApplicationStatus


def _postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


async def _application(tenant: Any, n: int, **fields: Any) -> Application:
    pos = await Position.create(company=tenant.company, title=f"Role {n}")
    cand = await Candidate.create(company=tenant.company, first_name=f"Nina{n}",
                                  last_name=None, email=f"nina{n}@example.org",
                                  language="de-AT", timezone="Europe/Vienna")
    return await Application.create(company=tenant.company, candidate=cand, position=pos,
                                    **fields)


async def test_same_instances_as_the_orm(tenant: Any, other_tenant: Any) -> None:
    if not _postgres():
        pytest.skip("SQLite reads through the ORM (core/services/bulk.py)")
    rejected = await _application(
        tenant, 1, status=ApplicationStatus.REJECTED, rejection_note="Ünïcode note",
        rejected_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    active = await _application(tenant, 2)
    theirs = await _application(other_tenant, 3)
    got = await applications_with_candidates(tenant.company.id,
                                             [rejected.id, active.id, theirs.id])
    assert set(got) == {rejected.id, active.id}  # another company's is not found
    orm = {a.id: a for a in await Application.filter(id__in=list(got))
           .select_related("candidate")}
    for aid, app in got.items():
        expected = orm[aid]
        for name in Application._meta.db_fields:
            assert getattr(app, name) == getattr(expected, name), name
            assert type(getattr(app, name)) is type(getattr(expected, name)), name
        for name in Candidate._meta.db_fields:
            assert getattr(app.candidate, name) == getattr(expected.candidate, name), name
        assert app.candidate.full_name == expected.candidate.full_name
    assert got[rejected.id].status is ApplicationStatus.REJECTED
    assert got[rejected.id].rejected_at.utcoffset().total_seconds() == 0


async def test_instances_save_like_orm_rows(tenant: Any) -> None:
    """An update through an instance read this way changes the row and only that row."""
    if not _postgres():
        pytest.skip("PostgreSQL only")
    app = await _application(tenant, 4)
    other = await _application(tenant, 5)
    got = (await applications_with_candidates(tenant.company.id, [app.id]))[app.id]
    got.status = ApplicationStatus.REJECTED
    await got.save(update_fields=["status"])
    got.candidate.first_name = "Renamed"
    await got.candidate.save()
    assert (await Application.get(id=app.id)).status is ApplicationStatus.REJECTED
    assert (await Candidate.get(id=app.candidate_id)).first_name == "Renamed"
    assert (await Application.get(id=other.id)).status is ApplicationStatus.ACTIVE
    assert await applications_with_candidates(tenant.company.id, []) == {}
