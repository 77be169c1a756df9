"""Migration 0006_template_languages on a database that already has templates: existing rows
get language "en" and are not defaults, their attachment links survive (a SQLite table remake
would cascade them away), and PostgreSQL takes the 22-character INTERVIEW_CANCELLATION kind."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from tortoise import Tortoise

from core.db import tortoise_config

PG_SERVER = os.environ.get("RECRUITMAIL_TEST_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
BEFORE = "models.0003_inbound_receipt"


def _rows(cid: uuid.UUID, tid: uuid.UUID, did: uuid.UUID) -> list[str]:
    return [
        f"INSERT INTO company (id, name, feature_email_templates, sender_name_mode, smtp_security, "
        f"created_at) VALUES ('{cid}', 'C', true, 'EMPLOYEE', 'STARTTLS', '2026-01-01')",
        f"INSERT INTO email_template (id, company_id, name, kind, subject, body, created_at, "
        f"updated_at) VALUES ('{tid}', '{cid}', 'n', 'MESSAGE', 's', 'b', '2026-01-01', '2026-01-01')",
        f"INSERT INTO document (id, company_id, filename, content_type, size, sha256, blob_key, "
        f"restricted, created_at) VALUES ('{did}', '{cid}', 'cv.pdf', 'application/pdf', 1, 'x', 'k', "
        f"false, '2026-01-01')",
        f"INSERT INTO email_template_attachment (email_template_id, document_id) "
        f"VALUES ('{tid}', '{did}')",
    ]


async def _migrate(url: str, target: str | None = None) -> None:
    from tortoise.migrations.api import migrate

    await migrate(config=tortoise_config(url), target=target)
    await Tortoise.close_connections()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_existing_templates_survive(backend: str, tmp_path: Path):
    import aiosqlite
    import asyncpg

    if backend not in os.environ.get("RECRUITMAIL_TEST_DATABASES", "sqlite,postgres"):
        pytest.skip(f"{backend} not selected")
    cid, tid, did = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    name = f"rm_mig14_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        url = f"sqlite://{tmp_path / 'db.sqlite3'}"
    else:
        admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = f"{PG_SERVER}/{name}"
    try:
        await _migrate(url, BEFORE)
        if backend == "sqlite":
            async with aiosqlite.connect(tmp_path / "db.sqlite3") as conn:
                for sql in _rows(cid, tid, did):
                    await conn.execute(sql)
                await conn.commit()
        else:
            conn = await asyncpg.connect(url)
            for sql in _rows(cid, tid, did):
                await conn.execute(sql)
            await conn.close()
        await _migrate(url)
        queries = ["SELECT language, is_default FROM email_template",
                   "SELECT count(*) FROM email_template_attachment",
                   f"INSERT INTO email_template (id, company_id, name, kind, subject, body, created_at, "
                   f"updated_at) VALUES ('{uuid.uuid4()}', '{cid}', 'c', 'INTERVIEW_CANCELLATION', 's', "
                   f"'b', '2026-01-01', '2026-01-01')",
                   "SELECT count(*) FROM email_template WHERE kind = 'INTERVIEW_CANCELLATION'"]
        if backend == "sqlite":
            async with aiosqlite.connect(tmp_path / "db.sqlite3") as conn:
                out = []
                for sql in queries:
                    out.append(list(await (await conn.execute(sql)).fetchall()))
                await conn.commit()
            assert out[0] == [("en", 0)]
            assert out[1] == [(1,)] and out[3] == [(1,)]
        else:
            conn = await asyncpg.connect(url)
            try:
                assert [tuple(r) for r in await conn.fetch(queries[0])] == [("en", False)]
                assert await conn.fetchval(queries[1]) == 1
                await conn.execute(queries[2])
                assert await conn.fetchval(queries[3]) == 1
            finally:
                await conn.close()
    finally:
        if backend == "postgres":
            admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
