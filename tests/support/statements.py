"""Count the SQL statements the database actually receives, at the driver.

PostgreSQL: an asyncpg query logger on every connection of Tortoise's pool (the pool is
filled to its maximum first, so no connection opened during the count goes unseen); it
sees every statement asyncpg sends, the pool's own reset query included.
SQLite: sqlite3's trace callback on Tortoise's connection (every statement executed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tortoise import Tortoise


class Statements:
    def __init__(self) -> None:
        self.sql: list[str] = []

    def __len__(self) -> int:
        return len(self.sql)

    def add(self, text: str) -> None:
        text = " ".join(str(text).split())
        # sqlite3 reports the statements a trigger runs too, as comments.
        if text and not text.startswith("--"):
            self.sql.append(text)


@contextlib.asynccontextmanager
async def count_statements() -> AsyncIterator[Statements]:
    client: Any = Tortoise.get_connection("default")
    seen = Statements()
    pool = getattr(client, "_pool", None)
    if pool is not None:  # asyncpg
        size = pool.get_max_size()
        held = [await pool.acquire() for _ in range(size)]
        for conn in held:
            await pool.release(conn)
        conns = [h._con for h in pool._holders if h._con is not None]
        assert len(conns) == size, "the pool must be full so every statement is seen"

        def log(record: Any) -> None:
            seen.add(record.query)

        for conn in conns:
            conn.add_query_logger(log)
        try:
            yield seen
            await asyncio.sleep(0)  # loggers run with call_soon
            await asyncio.sleep(0)
        finally:
            for conn in conns:
                conn.remove_query_logger(log)
    else:  # aiosqlite
        conn = client._connection
        await conn.set_trace_callback(seen.add)
        try:
            yield seen
        finally:
            await conn.set_trace_callback(None)
