"""Domain events over Redis pub/sub, one channel per company.

The database is the source of truth: an event is published after the commit that
recorded it, and a failure to publish is logged, never raised into the caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from core.redis import get_redis, key

log = logging.getLogger(__name__)

MESSAGE_STATUS = "message_status"
INTERVIEW_RESPONSE = "interview_response"
BULK_PROGRESS = "bulk_progress"


def company_channel(company_id: uuid.UUID | str) -> str:
    return key("events", company_id)


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


async def publish(company_id: uuid.UUID | str, event_type: str, **payload: Any) -> None:
    data = json.dumps({"type": event_type, **payload}, default=_default)
    try:
        await get_redis().publish(company_channel(company_id), data)
    except Exception:  # Redis down: subscribers miss a live update, the DB has it all.
        log.warning("could not publish %s event", event_type, exc_info=True)


async def publish_many(company_id: uuid.UUID | str, events: list[tuple[str, dict[str, Any]]]) -> None:
    if not events:
        return
    channel = company_channel(company_id)
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for event_type, payload in events:
                pipe.publish(channel, json.dumps({"type": event_type, **payload}, default=_default))
            await pipe.execute()
    except Exception:
        log.warning("could not publish %d events", len(events), exc_info=True)


async def subscribe(company_id: uuid.UUID | str) -> AsyncIterator[dict[str, Any]]:
    """Yield the company's events until the consumer stops iterating."""
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(company_channel(company_id))
    try:
        while True:
            msg = await pubsub.get_message(timeout=5.0)
            if msg is None:
                await asyncio.sleep(0)
                continue
            try:
                yield json.loads(msg["data"])
            except (ValueError, TypeError):
                log.warning("dropped a malformed event on %s", msg.get("channel"))
    finally:
        try:
            await pubsub.unsubscribe()
            await pubsub.aclose()
        except Exception:
            log.debug("pubsub close failed", exc_info=True)
