"""The checks of a message's input, shared by every way of sending: subject, body, copy
addresses, schedule, idempotency key and the candidate's own address."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from core.errors import ErrorCode, FieldError
from core.mail.addresses import normalize_address
from core.models import Candidate
from core.services import recording

MAX_SUBJECT = 998
MAX_BODY = 1_000_000
MAX_RECIPIENTS = 50
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def check_subject(subject: str | None, path: tuple[str, ...]) -> list[FieldError]:
    if subject is None or not subject.strip():
        return [FieldError(ErrorCode.INVALID_INPUT, "A subject is required.", path)]
    if "\r" in subject or "\n" in subject:
        return [FieldError(ErrorCode.INVALID_INPUT, "The subject must be one line.", path)]
    if len(subject) > MAX_SUBJECT:
        return [FieldError(ErrorCode.TOO_LARGE, f"The subject is longer than {MAX_SUBJECT}.", path)]
    return []


def check_body(body: str | None, path: tuple[str, ...]) -> list[FieldError]:
    if body is None or not body.strip():
        return [FieldError(ErrorCode.INVALID_INPUT, "A message text is required.", path)]
    if len(body) > MAX_BODY:
        return [FieldError(ErrorCode.TOO_LARGE, "The message text is too long.", path)]
    return []


def check_addresses(
    values: Sequence[str] | None, path: tuple[str, ...]
) -> tuple[list[str], list[FieldError]]:
    out: list[str] = []
    errors: list[FieldError] = []
    values = list(values or [])
    if len(values) > MAX_RECIPIENTS:
        errors.append(
            FieldError(ErrorCode.INVALID_INPUT, f"At most {MAX_RECIPIENTS} addresses.", path)
        )
    for i, v in enumerate(values):
        addr = normalize_address(v)
        if addr is None:
            errors.append(
                FieldError(ErrorCode.INVALID_EMAIL, f"{v!r} is not a valid email address.",
                           (*path, str(i)))
            )
        elif addr.lower() not in {a.lower() for a in out}:
            out.append(addr)
    return out, errors


def check_schedule(
    scheduled_at: datetime | None, path: tuple[str, ...]
) -> tuple[datetime | None, list[FieldError]]:
    """None means now. A time in the past (beyond a minute of clock skew) is an error."""
    if scheduled_at is None:
        return None, []
    if scheduled_at.tzinfo is None:
        return None, [FieldError(ErrorCode.INVALID_INPUT, "scheduledAt needs an offset.", path)]
    at = scheduled_at.astimezone(UTC)
    current = recording.now()
    if at < current - timedelta(minutes=1):
        return None, [FieldError(ErrorCode.INVALID_INPUT, "scheduledAt is in the past.", path)]
    if at > current + MAX_SCHEDULE_AHEAD:
        return None, [FieldError(ErrorCode.INVALID_INPUT, "scheduledAt is too far ahead.", path)]
    return (at if at > current else None), []


def check_idempotency_key(key: str | None, path: tuple[str, ...]) -> list[FieldError]:
    if key is not None and not (1 <= len(key) <= 200):
        return [FieldError(ErrorCode.INVALID_INPUT, "idempotencyKey: 1 to 200 characters.", path)]
    return []


def candidate_address_errors(candidate: Candidate, path: tuple[str, ...]) -> list[FieldError]:
    if candidate.anonymized_at is not None:
        return [FieldError(ErrorCode.INVALID_STATE, "The candidate was anonymised.", path)]
    if not candidate.email or normalize_address(candidate.email) is None:
        return [FieldError(ErrorCode.INVALID_EMAIL, "The candidate has no valid email address.",
                           path)]
    return []
