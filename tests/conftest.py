"""Shared fixtures: every test that uses `env` runs on SQLite and on PostgreSQL, with an
isolated Redis key prefix and its own blob/var directories.

Environment knobs:
  RECRUITMAIL_TEST_DATABASES   "sqlite,postgres" (default) or one of them
  RECRUITMAIL_TEST_PG          server URL without database (default postgres://postgres@127.0.0.1:5432)
  RECRUITMAIL_TEST_REDIS       redis URL incl. DB index (default redis://127.0.0.1:6379/7)
  RECRUITMAIL_TEST_LOOP        "uvloop": every test on uvloop's event loop, which the api
                               (uvicorn) and the worker process run on; default asyncio's
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures", "tests.support.api", "tests.support.inbound",
                  "tests.support.company_smtp", "tests.support.subsidiaries"]

BACKENDS = [
    b.strip()
    for b in os.environ.get("RECRUITMAIL_TEST_DATABASES", "sqlite,postgres").split(",")
    if b.strip()
]
PG_SERVER = os.environ.get("RECRUITMAIL_TEST_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
TEST_REDIS = os.environ.get("RECRUITMAIL_TEST_REDIS", "redis://127.0.0.1:6379/7")
TABLES_KEEP = {"tortoise_migrations"}

# The modules of the worker's SMTP dialogue run on both loops: the worker process runs on
# uvloop, whose transports differ from asyncio's where the dialogue reads replies itself.
BOTH_LOOPS = {"test_transport.py", "test_transport_replies.py", "test_announced_envelope.py",
              "test_company_smtp.py"}


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    import uvloop

    if os.environ.get("RECRUITMAIL_TEST_LOOP") == "uvloop":
        return {"uvloop": uvloop.new_event_loop}
    if item.path.name in BOTH_LOOPS:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from core.db import migrate

    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    _run(migrate(f"sqlite://{path}"))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    import asyncpg

    from core.db import migrate

    name = f"rm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run(admin(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    _run(migrate(url))
    yield url
    _run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_pg(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        names = [r["tablename"] for r in rows if r["tablename"] not in TABLES_KEEP]
        if names:
            await conn.execute(
                "TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"
            )
    finally:
        await conn.close()


@dataclass
class EnvInfo:
    backend: str
    database_url: str
    redis_url: str
    redis_prefix: str
    tmp: Path

    def environ(self) -> dict[str, str]:
        """The variables a subprocess (api, worker, inbound) needs to join this test."""
        return {k: v for k, v in os.environ.items() if k.startswith("RECRUITMAIL_")}


@pytest.fixture(params=BACKENDS)
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EnvInfo]:
    from core.settings import reset_settings

    backend = request.param
    if backend == "sqlite":
        db = tmp_path / "db.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), db)
        url = f"sqlite://{db}"
    elif backend == "postgres":
        url = request.getfixturevalue("pg_database")
        _run(_truncate_pg(url))
    else:
        raise ValueError(f"unknown test backend {backend}")
    prefix = f"rmtest:{uuid.uuid4().hex[:10]}"
    values = {
        "RECRUITMAIL_DATABASE_URL": url,
        "RECRUITMAIL_REDIS_URL": TEST_REDIS,
        "RECRUITMAIL_REDIS_PREFIX": prefix,
        "RECRUITMAIL_BLOB_DIR": str(tmp_path / "blobs"),
        "RECRUITMAIL_VAR_DIR": str(tmp_path / "var"),
        "RECRUITMAIL_SECRET_KEY": "test-secret-" + prefix,
        "RECRUITMAIL_SMTP_URL": "smtp://127.0.0.1:9",
        "RECRUITMAIL_MAIL_DOMAIN": "mail.test",
        "RECRUITMAIL_INBOUND_DOMAIN": "in.mail.test",
        "RECRUITMAIL_RETRY_BASE_SECONDS": "0.3",
        "RECRUITMAIL_LEASE_SECONDS": "5",
        "RECRUITMAIL_SWEEP_INTERVAL_SECONDS": "1",
        "RECRUITMAIL_SMTP_TIMEOUT_SECONDS": "5",
        "RECRUITMAIL_LOG_JSON": "false",
    }
    for k in [k for k in os.environ if k.startswith("RECRUITMAIL_")]:
        if k not in values and not k.startswith("RECRUITMAIL_TEST_"):
            monkeypatch.delenv(k)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    reset_settings()
    yield EnvInfo(backend, url, TEST_REDIS, prefix, tmp_path)
    reset_settings()


@pytest.fixture
async def db(env: EnvInfo) -> AsyncIterator[EnvInfo]:
    """The ORM opened on the test database, and Redis keys of this test removed afterwards."""
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from core.db import init_db
    from core.redis import close_redis, get_redis

    # Tortoise caches insert SQL per connection *name*; one process switching between
    # SQLite and PostgreSQL (only the test suite does) must start without it.
    EXECUTOR_CACHE.clear()
    ctx = await init_db()
    try:
        yield env
    finally:
        redis = get_redis()
        try:
            keys = [k async for k in redis.scan_iter(match=f"{env.redis_prefix}:*", count=1000)]
            keys += [k async for k in redis.scan_iter(match=f"arq:*{env.redis_prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)
        finally:
            await close_redis()
            await ctx.close_connections()
