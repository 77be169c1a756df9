"""The send path's hooks into a company server's limits (core.services.pacing).

- `hold_back`, before a message is claimed: its server may take a mail now (counted), or
  after a short wait in place, or the message stays QUEUED with `expectedSendAt`;
- `after_send`, with the server's answer: a throttling answer pauses the server and the
  message waits without losing an attempt; a server-side failure is kept on the company's
  settings (`emailSettings.lastError`); a success ends a throttling streak.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from core.mail.smtp_connect import SmtpTarget
from core.models import Message
from core.models.companies import MailSettings
from core.services import delivery, pacing, recording
from core.settings import get_settings
from worker.smtp_answers import Outcome, SendResult

log = logging.getLogger(__name__)

# The same failure of a server is written to its company at most this often per process.
LAST_ERROR_EVERY_SECONDS = 30.0
# Mails a throttling server refused come back after its pause at least this far apart.
THROTTLED_SPREAD_SECONDS = 0.2
_last_written: dict[str, tuple[str, float]] = {}


async def recipient_counts(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await Message.filter(id__in=list(ids)).values_list(
        "id", "to_addrs", "cc_addrs", "bcc_addrs")
    return {mid: max(1, len(to or []) + len(cc or []) + len(bcc or []))
            for mid, to, cc, bcc in rows}


def _when(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


async def hold_back(company: MailSettings, target: SmtpTarget, message_id: uuid.UUID,
                    recipients: int = 1, *, started: float | None = None) -> datetime | None:
    """None when the message may be sent now (its send is counted); else the time it now
    waits for, QUEUED with expectedSendAt (also its bulk operation's expected end).

    A worker waits in place for a slot only while its job is young (`started`, monotonic):
    in a chunk, the mails that would wait longer go back to the queue at once, each with
    its own planned time, instead of holding the job for minutes."""
    if not target.owner:
        return None  # the platform relay: no limits of a company's server
    limits = pacing.limits_of(company)
    in_place = max(0.0, get_settings().pacing_wait_in_place_seconds)
    deadline = (time.monotonic() if started is None else started) + in_place
    while True:
        wait = await pacing.acquire(target.owner, company.tenant_id, limits, recipients=recipients,
                                    member=message_id.hex)
        if wait <= 0:
            return None
        if time.monotonic() + wait > deadline:
            break
        await asyncio.sleep(wait)
    paused = await pacing.pause_until(target.owner) > time.time()
    at = await pacing.plan(target.owner, limits, wait,
                           spread=THROTTLED_SPREAD_SECONDS if paused else 0.0)
    why = ("the mail server asked to slow down" if paused
           else "held back by the mail server's limits")
    if not await delivery.hold_queued(message_id, at, detail=f"{why}; expected at {_when(at)}"):
        return at  # not QUEUED (a lease that ran out): tried again then, not sent now
    bulk_id = await Message.filter(id=message_id).values_list("bulk_operation_id", flat=True)
    if bulk_id and bulk_id[0]:
        await delivery.push_bulk_completion(bulk_id[0], at)  # type: ignore[arg-type]
    return at


async def after_send(company: MailSettings, target: SmtpTarget, result: SendResult) -> SendResult:
    """Apply the server's answer to its pacing and the company's lastError; a THROTTLED
    result gets the time the message waits for (`retry_at`)."""
    if not target.owner:
        # The platform relay is not paced: a throttling answer is an ordinary temporary
        # failure there (retried with backoff, counted).
        if result.outcome == Outcome.THROTTLED:
            return replace(result, outcome=Outcome.TEMPORARY)
        return result
    if result.outcome == Outcome.SENT:
        await pacing.went_well(target.owner)
        return result
    if result.server_fault:
        await _note_error(company, target.owner, result.detail)
    if result.outcome != Outcome.THROTTLED:
        return result
    await pacing.slow_down(target.owner, result.pause_seconds)
    # Back after the pause one by one (a fifth of a second apart at least), not all at once.
    at = await pacing.plan(target.owner, pacing.limits_of(company), 0.0,
                           spread=THROTTLED_SPREAD_SECONDS)
    return replace(result, retry_at=at)


async def _note_error(company: MailSettings, owner: str, text: str) -> None:
    now = time.monotonic()
    last = _last_written.get(owner)
    if last is not None and last[0] == text and now - last[1] < LAST_ERROR_EVERY_SECONDS:
        return
    _last_written[owner] = (text, now)
    try:
        await type(company).filter(id=company.pk).update(smtp_last_error=text,
                                                         smtp_last_error_at=recording.now())
    except Exception:
        log.warning("could not record the mail server's last error", exc_info=True)


async def record_throttled(message_id: uuid.UUID, result: SendResult) -> Message | None:
    """The claimed message goes back to QUEUED for when the server will take it again."""
    at = result.retry_at or recording.now()
    return await delivery.mark_paced(
        message_id, at,
        detail=f"the mail server asked to slow down ({result.detail}); not counted as an "
               f"attempt; expected at {_when(at)}")
