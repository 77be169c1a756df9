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

import orjson

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


def _dumps(event: dict[str, Any]) -> bytes:
    # orjson writes UUIDs and aware datetimes as str() and isoformat() do, ten times faster
    # than json.dumps with a default hook (a bulk publishes thousands of events).
    return orjson.dumps(event, default=_default)


async def publish(company_id: uuid.UUID | str, event_type: str, **payload: Any) -> None:
    await publish_many(company_id, [(event_type, payload)])


# Events of one commit travel together, this many to a Redis message: a chunk of a bulk
# send is one PUBLISH, not one per message. Subscribers see them one by one.
BATCH = 500


async def publish_many(company_id: uuid.UUID | str, events: list[tuple[str, dict[str, Any]]]) -> None:
    if not events:
        return
    channel = company_channel(company_id)
    try:
        if len(events) == 1:
            event_type, payload = events[0]
            await get_redis().publish(channel, _dumps({"type": event_type, **payload}))
            return
        async with get_redis().pipeline(transaction=False) as pipe:
            for start in range(0, len(events), BATCH):
                batch = [{"type": t, **p} for t, p in events[start:start + BATCH]]
                pipe.publish(channel, _dumps({"type": "batch", "events": batch}))
            await pipe.execute()
    except Exception:  # Redis down: subscribers miss a live update, the DB has it all.
        log.warning("could not publish %d events (%s)", len(events), events[0][0],
                    exc_info=True)


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
                event = json.loads(msg["data"])
            except (ValueError, TypeError):
                log.warning("dropped a malformed event on %s", msg.get("channel"))
                continue
            if isinstance(event, dict) and event.get("type") == "batch":
                for one in event.get("events") or []:
                    yield one
            else:
                yield event
    finally:
        try:
            await pubsub.unsubscribe()
            await pubsub.aclose()
        except Exception:
            log.debug("pubsub close failed", exc_info=True)
