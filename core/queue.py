"""Waking the worker. Redis only wakes workers; the database is the source of truth,
so a failed enqueue is logged and left to the sweeper."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from core.redis import get_arq, key

log = logging.getLogger(__name__)

SEND_MESSAGE = "send_message"
SEND_BATCH = "send_batch"


def send_job_id(message_id: uuid.UUID | str) -> str:
    # One pending job per message: a second enqueue while one waits is a no-op.
    return key("send", message_id)


async def enqueue_send(message_id: uuid.UUID, *, at: datetime | None = None) -> bool:
    try:
        pool = await get_arq()
        job = await pool.enqueue_job(
            SEND_MESSAGE, str(message_id), _job_id=send_job_id(message_id), _defer_until=at
        )
        return job is not None
    except Exception:
        log.warning("enqueue of message %s failed; the sweeper will pick it up", message_id,
                    exc_info=True)
        return False


async def enqueue_batch(batch_id: str, message_ids: list[uuid.UUID], *,
                        at: datetime | None = None) -> bool:
    try:
        pool = await get_arq()
        job = await pool.enqueue_job(
            SEND_BATCH, [str(m) for m in message_ids], _job_id=key("batch", batch_id),
            _defer_until=at,
        )
        return job is not None
    except Exception:
        log.warning("enqueue of batch %s failed; the sweeper will pick it up", batch_id,
                    exc_info=True)
        return False
