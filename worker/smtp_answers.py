"""What an SMTP server's answer means for a message: sent, try again, slow down (throttled,
not the message's fault) or give up, in words a recruiter can act on."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import aiosmtplib

from core.mail.smtp_connect import SmtpTarget
from core.services import pacing, smtp_guard


class ConnectionsBusy(Exception):
    """Every connection the server allows is open in some worker process."""


class Outcome(StrEnum):
    SENT = "SENT"
    TEMPORARY = "TEMPORARY"
    PERMANENT = "PERMANENT"
    # The server asked us to slow down (rate, connections, a day's quota): not the
    # message's fault, not one of its attempts.
    THROTTLED = "THROTTLED"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str
    # THROTTLED: how long to leave the server alone (None: by the throttling streak).
    pause_seconds: float | None = None
    # The failure is the server's (login, TLS, unreachable, sender), not the recipient's:
    # shown once on the company's settings.
    server_fault: bool = False
    # THROTTLED: when the message is expected to go instead (set by worker/paced.py).
    retry_at: datetime | None = None


# Enhanced status codes of rate and connection limits (RFC 3463: 4.3.2 system not
# accepting messages, 4.4.5 congestion, 4.5.3 too many recipients, 4.7.0 Google's and
# Microsoft's "try again later") and words servers put in such answers.
_THROTTLE_ENHANCED = {"4.3.2", "4.4.5", "4.5.3", "4.7.0", "4.7.28"}
_THROTTLE_WORDS = re.compile(
    r"rate|too many|limit|throttl|concurren|try again later|slow down|exceeded", re.I)
_QUOTA_WORDS = re.compile(r"quota|limit exceeded|sending limit|daily", re.I)
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


def throttling(code: int, message: str) -> float | None:
    """When an SMTP answer means "slow down": the pause it asks for (0 = by streak);
    None when it does not. 421 and 432 always do; 451 and 452 with a rate or connection
    enhanced code or words; 554 5.2.0 / 550 5.4.5 with a quota in words (a day's limit,
    Microsoft 365 and Google) pause the server for longer instead of failing the mail."""
    m = _ENHANCED.match(message or "")
    enhanced = m.group(1) if m else ""
    if code in (421, 432):
        return 0.0
    if code in (451, 452) and (enhanced in _THROTTLE_ENHANCED
                               or (enhanced in ("", "4.7.1", "4.3.0")
                                   and bool(_THROTTLE_WORDS.search(message or ""))
                                   and "greylist" not in (message or "").lower())):
        return 0.0
    if code >= 500 and enhanced in ("5.2.0", "5.4.5", "5.7.0", "5.3.4") and _QUOTA_WORDS.search(
            message or ""):
        return pacing.QUOTA_PAUSE_SECONDS
    return None


def words(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def classify(exc: BaseException, target: SmtpTarget) -> SendResult:
    """Turn an SMTP failure into words a recruiter can act on, and temporary vs permanent."""
    result = _classify(exc, target)
    if isinstance(exc, ConnectionsBusy):
        # Our own workers hold the server's connections: wait a moment, not the server's
        # failure.
        return replace(result, pause_seconds=0.5)
    if result.outcome != Outcome.SENT and not isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        code = getattr(exc, "code", None)
        pause = throttling(code, getattr(exc, "message", "")) if code else None
        if pause is not None:
            return SendResult(Outcome.THROTTLED, result.detail, pause_seconds=pause or None,
                              server_fault=True)
        return SendResult(result.outcome, result.detail, server_fault=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        pause = throttling(first.code, first.message)
        if pause is not None and all(throttling(r.code, r.message) is not None
                                     for r in exc.recipients):
            return SendResult(Outcome.THROTTLED, result.detail, pause_seconds=pause or None,
                              server_fault=True)
    return result


def _classify(exc: BaseException, target: SmtpTarget) -> SendResult:
    where = f"the mail server {target.describe()}"
    if isinstance(exc, smtp_guard.Refused):
        return SendResult(Outcome.PERMANENT, f"{where} may not be used: {exc}")
    if isinstance(exc, smtp_guard.Unresolved):
        return SendResult(Outcome.TEMPORARY, f"could not reach {where}: {exc}")
    if isinstance(exc, ConnectionsBusy):
        return SendResult(Outcome.THROTTLED, f"{where}: {exc}")
    if isinstance(exc, ssl.SSLError) or isinstance(getattr(exc, "__cause__", None),
                                                   ssl.SSLError):
        cause = exc if isinstance(exc, ssl.SSLError) else exc.__cause__
        return SendResult(Outcome.TEMPORARY,
                          f"the TLS connection to {where} failed: "
                          f"{getattr(cause, 'verify_message', None) or cause}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0]
        perm = all(r.code >= 500 for r in exc.recipients)
        text = "; ".join(f"{r.recipient}: {words(r.code, r.message)}" for r in exc.recipients)
        return SendResult(Outcome.PERMANENT if perm else Outcome.TEMPORARY,
                          f"{where} refused the recipient ({text})" if first else text)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SendResult(Outcome.PERMANENT,
                          f"{where} refused the login: {words(exc.code, exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        kind = Outcome.PERMANENT if exc.code >= 500 else Outcome.TEMPORARY
        return SendResult(kind, f"{where} refused the sender: {words(exc.code, exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        kind = Outcome.PERMANENT if exc.code >= 500 else Outcome.TEMPORARY
        return SendResult(kind, f"{where} answered {words(exc.code, exc.message)}")
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
        return SendResult(Outcome.TEMPORARY, f"{where} did not answer in time")
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, ConnectionError)):
        return SendResult(Outcome.TEMPORARY, f"could not reach {where}: {exc}")
    return SendResult(Outcome.TEMPORARY, f"sending through {where} failed: {exc!r}")
