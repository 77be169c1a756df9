"""Redis clients of this process: one for events (pub/sub) and one arq pool for the queue."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import Redis

from core.settings import get_settings

# One client per event loop: tests and the CLI may run several loops in one process.
_redis: dict[int, Redis] = {}
_arq: dict[int, ArqRedis] = {}


def _loop_key() -> int:
    return id(asyncio.get_running_loop())


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(get_settings().redis_url)


def get_redis() -> Redis:
    key = _loop_key()
    client = _redis.get(key)
    if client is None:
        client = Redis.from_url(
            get_settings().redis_url, socket_connect_timeout=3, health_check_interval=30
        )
        _redis[key] = client
    return client


async def get_arq() -> ArqRedis:
    key = _loop_key()
    pool = _arq.get(key)
    if pool is None:
        pool = await create_pool(redis_settings(), default_queue_name=queue_name())
        _arq[key] = pool
    return pool


def queue_name() -> str:
    return f"{get_settings().redis_prefix}:queue"


def key(*parts: object) -> str:
    """A Redis key or channel under this deployment's prefix."""
    return ":".join([get_settings().redis_prefix, *(str(p) for p in parts)])


async def close_redis() -> None:
    loop_key = _loop_key()
    client = _redis.pop(loop_key, None)
    if client is not None:
        await client.aclose()
    pool = _arq.pop(loop_key, None)
    if pool is not None:
        await pool.aclose()
