"""Pacing of a company's own mail server: its limits, held across every worker process.

A server is known by the owner of its settings (`owner_key`: the company, or a
subsidiary with its own server). Its limits, `Limits`, come from a
provider preset or explicit values. In Redis, per server:

- `min`: a sorted set of the last minute's sends, and `tat`, the earliest time of the next
  send: sends are spread evenly (60 a minute is one a second) and no 60-s window holds more
  than the limit;
- `day`: the last 24 hours' sends with their recipient counts, and `daysum` their total: a
  day's quota counts recipients (To, Cc and Bcc), as Microsoft 365 and Google do;
- `pause`: the server asked us to slow down (421, 432, a rate 451/452): nothing goes to it
  before this time; `streak` doubles the pause while it keeps asking;
- `conn`: the connections open to it (holder -> lease end), at most `connections`;
- `seeded`: the counts were rebuilt from the database, which is done again when Redis lost
  them (from the SENT times of the owner's messages in the last 24 hours).

`acquire` grants a send now or says how long to wait; it never sends or sleeps itself.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q

from core.models import Message
from core.models.companies import MailSettings
from core.models.enums import SmtpProvider
from core.redis import get_redis, key
from core.settings import get_settings

# A throttled server is left alone for 2 s, then 4, 8 … up to 5 minutes while it keeps
# asking; a day's quota answer (554 5.2.0 … quota) pauses it for half an hour.
PAUSE_FIRST_SECONDS = 2.0
PAUSE_MAX_SECONDS = 300.0
QUOTA_PAUSE_SECONDS = 1800.0


@dataclass(frozen=True)
class Limits:
    per_minute: int | None = None
    per_day: int | None = None  # recipients in a sliding 24 h
    connections: int | None = None

    @property
    def any(self) -> bool:
        return bool(self.per_minute or self.per_day or self.connections)


# Published limits (sources in the README, "Company mail servers").
PRESETS: dict[SmtpProvider, Limits] = {
    # Exchange Online SMTP AUTH client submission: 30 messages a minute, 10,000
    # recipients a day, 3 concurrent connections per mailbox.
    SmtpProvider.MICROSOFT_365: Limits(per_minute=30, per_day=10_000, connections=3),
    # Google Workspace: 2,000 messages a day per user (no published per-minute figure).
    SmtpProvider.GOOGLE_WORKSPACE: Limits(per_minute=None, per_day=2_000, connections=None),
    SmtpProvider.OTHER: Limits(),
}


def windows() -> tuple[float, float]:
    """(minute, day) in seconds: 60 and 86,400; tests shorten both to keep runs short."""
    s = get_settings()
    return s.pacing_minute_seconds, s.pacing_day_seconds


def owner_key(owner: MailSettings) -> str:
    """Whose mail server settings these are: "company:<id>" or "subsidiary:<id>"."""
    return owner.settings_key


def limits_of(owner: MailSettings) -> Limits:
    return Limits(per_minute=owner.smtp_max_per_minute or None,
                  per_day=owner.smtp_max_per_day or None,
                  connections=owner.smtp_max_connections or None)


def _sent_through(owner: str, company_id: uuid.UUID) -> Q:
    """The messages that went through the server of `owner` (an owner_key): a
    subsidiary's own, or the company's (its messages not under a subsidiary with a server
    of its own)."""
    kind, _, pk = owner.partition(":")
    if kind == "subsidiary":
        return Q(company_id=company_id, subsidiary_id=uuid.UUID(pk))
    return Q(company_id=company_id) & (Q(subsidiary_id__isnull=True)
                                       | Q(subsidiary__smtp_host__isnull=True))


def _k(owner: str, what: str) -> str:
    return key("pace", owner, what)


# KEYS: min day daysum tat pause seeded
# ARGV: now per_minute per_day recipients member
# Returns "0" (granted), the seconds to wait, or "seed" (counts lost: rebuild them first).
_ACQUIRE = """
local now = tonumber(ARGV[1])
local per_min = tonumber(ARGV[2])
local per_day = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local member = ARGV[5]
local minute = tonumber(ARGV[6])
-- The day too is a little longer (up to a second) than the server's.
local day = tonumber(ARGV[7])
day = day + math.min(1, day * 0.25)
if (per_min > 0 or per_day > 0) and redis.call('EXISTS', KEYS[6]) == 0 then
  return 'seed'
end
local at = now
local pause = tonumber(redis.call('GET', KEYS[5]) or '0')
if pause > at then at = pause end
local tat = 0
if per_min > 0 then
  tat = tonumber(redis.call('GET', KEYS[4]) or '0')
  if tat > at then at = tat end
  -- The window is a little longer than the minute: a mail that took longer to reach the
  -- server than the one a minute after it must not make the server see one too many.
  local window = minute + math.min(1, minute * 0.25)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[1])
  if count >= per_min then
    local oldest = redis.call('ZRANGE', KEYS[1], count - per_min, count - per_min, 'WITHSCORES')
    local free = tonumber(oldest[2]) + window
    if free > at then at = free end
  end
end
if per_day > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - day)
  if #old > 0 then
    local gone = 0
    for _, m in ipairs(old) do gone = gone + tonumber(string.match(m, '|(%d+)$')) end
    redis.call('DECRBY', KEYS[3], gone)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - day)
  end
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used > 0 and used + n > per_day then
    local need = used + n - per_day
    local entries = redis.call('ZRANGE', KEYS[2], 0, need - 1, 'WITHSCORES')
    local freed = 0
    for i = 1, #entries, 2 do
      freed = freed + tonumber(string.match(entries[i], '|(%d+)$'))
      if freed >= need then
        local t = tonumber(entries[i + 1]) + day
        if t > at then at = t end
        break
      end
    end
  end
end
if at > now then return tostring(at - now) end
if per_min > 0 then
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('EXPIRE', KEYS[1], math.ceil(minute) * 2)
  redis.call('SET', KEYS[4], tostring(now + minute / per_min), 'EX', math.ceil(minute) * 2)
end
if per_day > 0 then
  -- The same message asking again (its last try was throttled) moves, is not added.
  if redis.call('ZADD', KEYS[2], now, member .. '|' .. n) == 1 then
    redis.call('INCRBY', KEYS[3], n)
  end
  redis.call('EXPIRE', KEYS[2], math.ceil(day) * 2)
  redis.call('EXPIRE', KEYS[3], math.ceil(day) * 2)
end
if per_min > 0 or per_day > 0 then redis.call('EXPIRE', KEYS[6], 172800) end
return '0'
"""

# KEYS: min day daysum tat seeded
# ARGV: now per_minute minute day, then (time, member, recipients)...
_SEED = """
local now = tonumber(ARGV[1])
local per_min = tonumber(ARGV[2])
local minute = tonumber(ARGV[3])
local day = tonumber(ARGV[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local total = 0
local last = 0
for i = 5, #ARGV, 3 do
  local t = tonumber(ARGV[i])
  if t > now - minute then redis.call('ZADD', KEYS[1], t, ARGV[i + 1]) end
  redis.call('ZADD', KEYS[2], t, ARGV[i + 1] .. '|' .. ARGV[i + 2])
  total = total + tonumber(ARGV[i + 2])
  if t > last then last = t end
end
redis.call('SET', KEYS[3], total, 'EX', math.ceil(day) * 2)
redis.call('EXPIRE', KEYS[1], math.ceil(minute) * 2)
redis.call('EXPIRE', KEYS[2], math.ceil(day) * 2)
if per_min > 0 and last > 0 then
  redis.call('SET', KEYS[4], tostring(last + minute / per_min), 'EX', math.ceil(minute) * 2)
end
redis.call('SET', KEYS[5], '1', 'EX', 172800)
return total
"""

# KEYS: conn ; ARGV: now, max, holder, lease seconds -> 1 when the holder has a connection
_CONN_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]))
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])) + 60)
  return 1
end
return 0
"""

# KEYS: pause streak ; ARGV: now, seconds (0 = by streak), first, max -> pause end
_SLOW_DOWN = """
local now = tonumber(ARGV[1])
local seconds = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > now and seconds <= 0 then
  -- Mails that were on their way when the pause began: the same answer, one step.
  return tostring(current)
end
local streak = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 3600)
if seconds <= 0 then
  seconds = math.min(tonumber(ARGV[3]) * 2 ^ (streak - 1), tonumber(ARGV[4]))
end
local untilt = now + seconds
if current > untilt then untilt = current end
redis.call('SET', KEYS[1], tostring(untilt), 'EX', math.ceil(untilt - now) + 60)
return tostring(untilt)
"""


async def _eval(script: str, keys: list[str], *args: Any) -> Any:
    call: Any = get_redis().eval(script, len(keys), *keys, *(str(a) for a in args))
    return await call


async def _seed(owner: str, company_id: uuid.UUID, limits: Limits, now: float) -> None:
    """Rebuild the minute's and the day's counts from the database (Redis lost them)."""
    redis = get_redis()
    lock = _k(owner, "seeding")
    if not await redis.set(lock, "1", nx=True, ex=30):
        return  # another process is at it; the caller asks again shortly
    try:
        minute, day = windows()
        since = datetime.fromtimestamp(now - day, UTC)
        rows = await Message.filter(_sent_through(owner, company_id),
                                    sent_at__gte=since).values_list(
            "id", "sent_at", "to_addrs", "cc_addrs", "bcc_addrs")
        args: list[Any] = [now, limits.per_minute or 0, minute, day]
        for mid, sent_at, to, cc, bcc in rows:
            args += [sent_at.timestamp(), str(mid), max(1, len(to or []) + len(cc or [])
                                                      + len(bcc or []))]
        await _eval(_SEED, [_k(owner, w) for w in ("min", "day", "daysum", "tat", "seeded")],
                    *args)
    finally:
        await redis.delete(lock)


async def acquire(owner: str, company_id: uuid.UUID, limits: Limits, *,
                  recipients: int = 1, member: str | None = None) -> float:
    """0 when a mail of `recipients` recipients may go to the server now (and it is
    counted), else the seconds to wait before asking again."""
    member = member or uuid.uuid4().hex
    keys = [_k(owner, w) for w in ("min", "day", "daysum", "tat", "pause", "seeded")]
    minute, day = windows()
    for _ in range(3):
        now = time.time()
        answer = await _eval(_ACQUIRE, keys, now, limits.per_minute or 0, limits.per_day or 0,
                             max(1, recipients), member, minute, day)
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        if text != "seed":
            return max(0.0, float(text))
        await _seed(owner, company_id, limits, now)
    return 0.5


async def pause_until(owner: str) -> float:
    """The time (epoch seconds) before which nothing goes to the server; 0 when none."""
    value = await get_redis().get(_k(owner, "pause"))
    return float(value) if value else 0.0


async def slow_down(owner: str, seconds: float | None = None) -> datetime:
    """The server asked us to slow down: pause it (doubling while it keeps asking)."""
    until = await _eval(_SLOW_DOWN, [_k(owner, "pause"), _k(owner, "streak")], time.time(),
                        seconds or 0, PAUSE_FIRST_SECONDS, PAUSE_MAX_SECONDS)
    return datetime.fromtimestamp(float(until), UTC)


async def went_well(owner: str) -> None:
    """A mail went through: the next throttling answer starts over with a short pause."""
    await get_redis().delete(_k(owner, "streak"))


# KEYS: plan tat pause ; ARGV: now, interval, not_before -> the planned time
_PLAN = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local at = math.max(now, tonumber(ARGV[3]))
local pause = tonumber(redis.call('GET', KEYS[3]) or '0')
if pause > at then at = pause end
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tat > at then at = tat end
  local plan = tonumber(redis.call('GET', KEYS[1]) or '0')
  if plan > at then at = plan end
  redis.call('SET', KEYS[1], tostring(at + interval), 'EX', math.ceil(at - now) + 3600)
end
return tostring(at)
"""


async def plan(owner: str, limits: Limits, wait: float, *, spread: float = 0.0) -> datetime:
    """A time for a mail held back by the limits (Message.expectedSendAt): not before
    `wait` seconds from now, after the pause, and one interval after the mail planned
    before it (so held-back mails come back spread out, in order; `spread` is the least
    interval, for a server without a per-minute limit). `acquire` decides."""
    now = time.time()
    interval = max(windows()[0] / limits.per_minute if limits.per_minute else 0.0, spread)
    at = await _eval(_PLAN, [_k(owner, "plan"), _k(owner, "tat"), _k(owner, "pause")],
                     now, interval, now + max(0.0, wait))
    return datetime.fromtimestamp(float(at), UTC)


async def expected_end(company: MailSettings, count: int,
                       start_at: datetime | None = None) -> datetime | None:
    """When `count` more one-recipient mails to the company's own server are expected to
    have gone, given its limits and what is already counted (BulkOperation's
    expectedCompletionAt when it is created); None when the server has no rate limits."""
    limits = limits_of(company)
    if not company.smtp_host or count <= 0 or not (limits.per_minute or limits.per_day):
        return None
    owner = owner_key(company)
    redis = get_redis()
    minute, day = windows()
    now = time.time()
    start = max(now, start_at.timestamp() if start_at else now)
    for what in ("pause", "tat", "plan"):
        value = await redis.get(_k(owner, what))
        if value and (what == "pause" or limits.per_minute):
            start = max(start, float(value))
    interval = minute / limits.per_minute if limits.per_minute else 0.0
    end = start + (count - 1) * interval
    if limits.per_day:
        used = int(await redis.get(_k(owner, "daysum")) or 0) if start - now < day else 0
        over = used + count - limits.per_day
        if over > 0:
            oldest = await redis.zrange(_k(owner, "day"), 0, 0, withscores=True)
            first_free = (oldest[0][1] if oldest and used else now) + day
            windows_more = -(-over // limits.per_day)  # ceil
            end = max(end, first_free + (windows_more - 1) * day)
    return datetime.fromtimestamp(end, UTC)


# --- connections across processes -------------------------------------------------


async def take_connection(owner: str, limit: int, holder: str, lease: float) -> bool:
    """Count a connection to the server for `holder` when fewer than `limit` are open
    (across every process); refreshing a held one always succeeds."""
    got = await _eval(_CONN_ACQUIRE, [_k(owner, "conn")], time.time(), limit, holder, lease)
    return bool(got)


async def give_back_connection(owner: str, holder: str) -> None:
    await get_redis().zrem(_k(owner, "conn"), holder)


async def forget(owner: str) -> None:
    """The server's settings changed: its pause, throttling streak and plan start over
    (the counts of what was sent stay: the same mailbox may still be behind it)."""
    await get_redis().delete(_k(owner, "pause"), _k(owner, "streak"), _k(owner, "plan"))
