"""The rows live subscriptions read for each Redis message (core/row_columns.py): only the
company's own, and by primary key whatever the statistics say."""

from __future__ import annotations

from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from core.models import Candidate, Message
from core.models.enums import MessageKind, MessageStatus
from core.row_columns import row_columns, statement
from schema.live import Delivery

COLUMNS = ("id", "status", "subject", "candidate__email")


async def _message(tenant: Any, n: int) -> Message:
    cand = await Candidate.create(company=tenant.company, first_name="Nina", last_name="N",
                                  email=f"nina{n}@example.org")
    return await Message.create(
        company=tenant.company, candidate=cand, sender=tenant.employee,
        kind=MessageKind.MESSAGE, status=MessageStatus.SENT, from_name="Ada",
        from_address="ada@acme.example", to_addrs=[cand.email], subject=f"S{n}", body="B",
        rfc_message_id=f"m{n}@test")


async def test_only_the_company_s_rows(tenant: Any, other_tenant: Any) -> None:
    """An event that names another company's message (a mis-routed or forged id) reads
    nothing of it, through the column reader and through the ORM rows alike."""
    mine, theirs = await _message(tenant, 1), await _message(other_tenant, 2)
    got = await row_columns(Message, tenant.company.id, [mine.id, theirs.id], COLUMNS)
    assert got == {mine.id: {"id": mine.id, "status": "SENT", "subject": "S1",
                             "candidate__email": "nina1@example.org"}}
    # Asking for company_id itself keeps it in the answer.
    got = await row_columns(Message, other_tenant.company.id, [mine.id, theirs.id],
                            ("id", "company_id"))
    assert got == {theirs.id: {"id": theirs.id, "company_id": other_tenant.company.id}}
    delivery = Delivery(tenant.company.id, [{"message_id": str(mine.id)},
                                            {"message_id": str(theirs.id)}])
    assert await delivery.row(Message, "message_id", theirs.id) is None
    assert (await delivery.row(Message, "message_id", mine.id)).id == mine.id


async def test_read_by_primary_key_under_stale_statistics(tenant: Any) -> None:
    """Right after a bulk insert PostgreSQL's statistics still say the company has a few
    messages; the statement must still go by primary key, not test each of the company's
    rows against the ids (that made 50 dashboards cost a bulk send 60 % of its rate)."""
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        return  # SQLite: `id IN (?, …)` always takes the primary key
    first = [await _message(tenant, n) for n in range(3)]
    await conn.execute_script("ANALYZE message")  # the statistics of three messages
    await Message.bulk_create([Message(
        company=tenant.company, candidate_id=first[0].candidate_id, sender=tenant.employee,
        kind=MessageKind.MESSAGE, status=MessageStatus.QUEUED, from_name="Ada",
        from_address="ada@acme.example", to_addrs=["x@example.org"], subject=f"B{n}",
        body="B", rfc_message_id=f"b{n}@test") for n in range(3000)], batch_size=1000)
    ids = [m.id for m in first]
    read = statement(Message, COLUMNS, ids, "postgres")
    sql, params = read.sql, read.params
    async with in_transaction() as tx:
        await tx.execute_script("SET LOCAL plan_cache_mode = force_generic_plan")
        await tx.execute_script(f"PREPARE rc_probe(text) AS {sql}")
        plan = "\n".join(r["QUERY PLAN"] for r in await tx.execute_query_dict(
            f"EXPLAIN EXECUTE rc_probe('{params[0]}')"))
        await tx.execute_script("DEALLOCATE rc_probe")
    # By the primary key, and no row filtered after the index.
    assert "Index Scan on message_pkey" in plan or "Index Scan using message_pkey" in plan, plan
    assert "Filter" not in plan, plan
    assert set(await row_columns(Message, tenant.company.id, ids, COLUMNS)) == set(ids)
