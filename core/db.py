"""Tortoise configuration, start-up, shutdown and migrations."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext

from core.settings import Settings, get_settings

MODELS_MODULE = "core.models"
MIGRATIONS_MODULE = "core.migrations"


def _normalise_url(url: str) -> str:
    if url.startswith("sqlite://") and not url.startswith("sqlite://:memory:"):
        path = url[len("sqlite://") :].split("?", 1)[0]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://") :]
    return url


async def _keep_session(connection: Any) -> None:
    """asyncpg's pool reset, minus the round trip.

    By default asyncpg sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` every time a connection goes back to the pool: one extra round trip after
    every statement Tortoise runs outside a transaction. Nothing here takes advisory
    locks, LISTENs, keeps cursors outside transactions or SETs session variables, so there
    is nothing to undo. What is needed is kept: asyncpg still rolls back a transaction
    left open (a cancelled request) before this is called.
    """


# The connection of the worker's per-mail statements (claims.py), when it has one: the same
# database with generic plans. PostgreSQL planned the claim-and-SENT statement (eight CTEs)
# anew for every execution, 0.6 ms each, because its estimate for `id = ANY($1)` made the
# generic plan look dearer than a custom one; on this 2-core machine that was a fifth of
# what a mail cost. The ORM's queries keep PostgreSQL's choice (the default connection).
#
# It is a client of its own, not a second connection in Tortoise's configuration: with two
# there, every `in_transaction()` without a connection name raises ParamsError ("you are
# running with multiple databases"), and the worker could record no failure, no retry and
# no release on PostgreSQL.
HOT = "hot"
HOT_SETTINGS = {"plan_cache_mode": "force_generic_plan"}
_hot: BaseDBAsyncClient | None = None


def _connection(url: str, server_settings: dict[str, str] | None,
                lean_pool: bool) -> str | dict[str, Any]:
    if not ((server_settings or lean_pool) and url.startswith(("postgres://", "asyncpg://"))):
        return url
    connection = expand_db_url(url)
    credentials = connection["credentials"]
    if server_settings:
        credentials["server_settings"] = {
            **credentials.get("server_settings", {}), **server_settings}
    if lean_pool:
        credentials["reset"] = _keep_session
    return connection


def tortoise_config(database_url: str | None = None,
                    server_settings: dict[str, str] | None = None,
                    lean_pool: bool = True) -> dict[str, Any]:
    url = _normalise_url(database_url or get_settings().database_url)
    return {
        "connections": {"default": _connection(url, server_settings, lean_pool)},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# For the `tortoise` CLI (makemigrations): `tortoise -c core.db.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = {
    "connections": {"default": "sqlite://var/makemigrations.sqlite3"},
    "apps": {
        "models": {
            "models": [MODELS_MODULE],
            "default_connection": "default",
            "migrations": MIGRATIONS_MODULE,
        }
    },
}


async def init_db(settings: Settings | None = None,
                  server_settings: dict[str, str] | None = None,
                  lean_pool: bool = True, hot: bool = False) -> TortoiseContext:
    """Open the ORM for this process. The context is global so every task sees it.
    `server_settings` are PostgreSQL session settings for every connection; `lean_pool`
    (every process by default) see _keep_session; `hot` (the worker) adds the HOT
    connection."""
    global _hot
    settings = settings or get_settings()
    ctx = await Tortoise.init(
        config=tortoise_config(settings.database_url, server_settings, lean_pool),
        _enable_global_fallback=True,
    )
    url = _normalise_url(settings.database_url)
    if hot and url.startswith(("postgres://", "asyncpg://")):
        _hot = _client(_connection(url, {**(server_settings or {}), **HOT_SETTINGS}, lean_pool), HOT)
    return ctx


def _client(config: str | dict[str, Any], name: str) -> BaseDBAsyncClient:
    """A Tortoise database client outside the ORM's configuration (it connects on first
    use, as the configured ones do)."""
    info = expand_db_url(config) if isinstance(config, str) else config
    engine = importlib.import_module(info["engine"])
    cls = engine.get_client_class(info) if hasattr(engine, "get_client_class") \
        else engine.client_class
    client: BaseDBAsyncClient = cls(connection_name=name, **info["credentials"])
    return client


def hot_connection() -> BaseDBAsyncClient:
    """The HOT connection where this process has one, else the default."""
    return _hot if _hot is not None else connections.get("default")


async def close_db(ctx: TortoiseContext | None = None) -> None:
    global _hot
    if _hot is not None:
        hot, _hot = _hot, None
        await hot.close()
    if ctx is not None:
        await ctx.close_connections()
    else:
        await Tortoise.close_connections()


async def migrate(database_url: str | None = None) -> None:
    """Bring the database to the current schema (idempotent)."""
    from tortoise.migrations.api import migrate as run_migrations

    await run_migrations(config=tortoise_config(database_url))
    await Tortoise.close_connections()


