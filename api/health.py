"""/healthz (the process answers) and /readyz (its database and Redis answer)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import Tortoise

from core.redis import get_redis

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _database() -> None:
    await Tortoise.get_connection("default").execute_query("SELECT 1")


async def _redis() -> None:
    await get_redis().ping()


async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, check in (("database", _database), ("redis", _redis)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:  # any failure means: not ready
            log.warning("readiness check %s failed: %r", name, exc)
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)
