"""The inbound mail's copy and the result of handling it: what every inbound path stores.

The gateway (inbound/) decides what a mail is and calls one function of
core/services/inbound_calendar.py (calendar answers), inbound_replies.py (replies) or
inbound_bounces.py (bounces), or record_ignored() here. Every such function stores the
mail's copy (InboundEmail, store_inbound_copy) in the same transaction as its effect and
publishes events only after the commit. Functions are idempotent where a sender may deliver
the same mail twice (a lost "250" makes it retry).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.models import InboundEmail
from core.models.enums import InboundOutcome

RAW_COPY_LIMIT = 1_000_000  # bytes of a mail kept in InboundEmail.raw_mail
ATTACHMENT_LIMIT = 10 * 1024 * 1024  # per attached file; larger ones are skipped with a note

# A reply's body is the mail's full text; when the candidate's client quoted earlier
# mail, this line (alone on its line) is inserted before the quoted history. Text above
# it is what the candidate wrote. Use split_reply_body() to read it back.
QUOTE_MARKER = "-------- quoted history --------"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InboundRetry(Exception):
    """The state changed under us (e.g. a reschedule while reading a reply): answer 451."""


def safe_text(value: object, limit: int) -> str:
    """Text any database takes: no NUL or other control bytes, no lone surrogates, capped."""
    if value is None:
        return ""
    text = _CONTROL.sub("", str(value)[:limit])
    return text.encode("utf-8", "replace").decode("utf-8")


def split_reply_body(body: str) -> tuple[str, str | None]:
    """(what the candidate wrote, the quoted history or None) of a stored reply body."""
    head, sep, quoted = body.partition(f"{QUOTE_MARKER}\n")
    if not sep:
        if body.endswith(QUOTE_MARKER):
            return body[: -len(QUOTE_MARKER)].rstrip(), ""
        return body, None
    return head.rstrip(), quoted


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InboundCopy:
    """The mail as it came over SMTP, for one routed recipient."""

    mail_from: str
    rcpt: str
    raw: bytes


@dataclass(frozen=True)
class IncomingAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class InboundResult:
    outcome: InboundOutcome
    detail: str
    inbound_email_id: uuid.UUID
    message_id: uuid.UUID | None = None  # the reply created, or the message that bounced
    interview_id: uuid.UUID | None = None


async def store_inbound_copy(
    *,
    copy: InboundCopy,
    outcome: InboundOutcome,
    detail: str,
    company_id: uuid.UUID | None = None,
    candidate_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    interview_id: uuid.UUID | None = None,
) -> InboundEmail:
    """Keep the mail (first RAW_COPY_LIMIT bytes) and what was done with it.

    Runs in the caller's transaction when there is one.
    """
    return await InboundEmail.create(
        company_id=company_id,
        candidate_id=candidate_id,
        message_id=message_id,
        interview_id=interview_id,
        mail_from=safe_text(copy.mail_from, 998),
        rcpt_to=[safe_text(copy.rcpt, 320)],
        size=len(copy.raw),
        raw_mail=bytes(copy.raw[:RAW_COPY_LIMIT]),
        truncated=len(copy.raw) > RAW_COPY_LIMIT,
        outcome=outcome.value,
        detail=safe_text(detail, 4000),
    )


async def record_ignored(
    *, copy: InboundCopy, detail: str, outcome: InboundOutcome = InboundOutcome.IGNORED,
    **links: Any,
) -> InboundResult:
    """Keep a mail that changes nothing, with the reason in `detail`."""
    row = await store_inbound_copy(copy=copy, outcome=outcome, detail=detail, **links)
    return InboundResult(outcome, detail, row.id, links.get("message_id"), links.get("interview_id"))
