"""Delivery status notifications (RFC 3464): who failed, why, and which mail bounced.

Pure functions over a parsed mail (``email.message.Message``, compat32 or default
policy); no I/O. Hostile input yields an empty report, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from inbound.text import header_text, iter_parts, one_line

_DSN_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_RETURNED_TYPES = {"message/rfc822", "message/global", "text/rfc822-headers",
                   "message/global-headers"}
_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_LINE_RE = re.compile(r"(?m)^.*\b[45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b.*$")
_DELAY_SUBJECT_RE = re.compile(
    r"(?i)\b(?:delayed mail|delivery delayed|\(delay\)|still being retried|warning: could not send)"
)
_MSGID_RE = re.compile(r"<([^<>\s]{1,500})>")
MAX_RECIPIENTS = 50
MAX_FIELD = 1000

# RFC 3463 subject.detail codes in words a recruiter can act on.
_DETAIL_WORDS = {
    (1, 0): "there is a problem with the recipient's address",
    (1, 1): "the mailbox does not exist",
    (1, 2): "the recipient's mail domain does not exist or does not accept mail",
    (1, 3): "the recipient's address is not valid",
    (1, 4): "the recipient's address is ambiguous",
    (1, 6): "the mailbox has moved and has no forwarding address",
    (1, 10): "the recipient's domain does not accept mail",
    (2, 0): "there is a problem with the recipient's mailbox",
    (2, 1): "the mailbox is disabled",
    (2, 2): "the mailbox is full",
    (2, 3): "the message is too large for the mailbox",
    (2, 4): "a mailing list could not be expanded",
    (3, 0): "the receiving mail system reported a problem",
    (3, 1): "the receiving mail system is full",
    (3, 2): "the receiving mail system does not accept messages",
    (3, 4): "the message is too large for the receiving mail system",
    (3, 5): "the receiving mail system is misconfigured",
    (4, 0): "the mail could not be routed",
    (4, 1): "the recipient's mail server did not answer",
    (4, 2): "the connection to the recipient's mail server broke",
    (4, 4): "the mail could not be routed to the recipient's domain",
    (4, 6): "the mail ran in a routing loop",
    (4, 7): "delivery took too long and was given up",
    (5, 0): "the receiving mail server refused the mail",
    (6, 0): "the message content was refused",
    (7, 0): "the mail was refused for security or policy reasons",
    (7, 1): "the recipient's server refused the mail (sender not allowed, or spam suspected)",
    (7, 26): "the mail failed the recipient's authentication checks (SPF/DKIM/DMARC)",
}
_SUBJECT_WORDS = {
    0: "the mail could not be delivered",
    1: "there is a problem with the recipient's address",
    2: "there is a problem with the recipient's mailbox",
    3: "the receiving mail system reported a problem",
    4: "there was a network or routing problem",
    5: "there was a mail protocol problem",
    6: "the message content was refused",
    7: "the mail was refused for security or policy reasons",
}


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a delivery-status report."""

    final_recipient: str | None
    original_recipient: str | None
    action: str | None  # lower-case: failed, delayed, delivered, relayed, expanded
    status: str | None  # e.g. "5.1.1"
    diagnostic_code: str | None  # without its type prefix, e.g. "550 5.1.1 User unknown"
    remote_mta: str | None

    @property
    def failed(self) -> bool:
        if self.action:
            return self.action == "failed"
        return bool(self.status and self.status.startswith("5"))

    @property
    def delayed(self) -> bool:
        if self.action:
            return self.action == "delayed"
        return bool(self.status and self.status.startswith("4"))


@dataclass(frozen=True)
class DeliveryReport:
    """What a DSN says: per-recipient statuses and the identity of the returned mail."""

    recipients: list[RecipientStatus] = field(default_factory=list)
    original_message_id: str | None = None  # without <>
    original_envelope_id: str | None = None
    recruitmail_message: str | None = None  # our X-Recruitmail-Message header, when returned
    structured: bool = False  # a real message/delivery-status part was found
    free_text: str | None = None  # the human-readable part (for non-RFC 3464 bounces)
    delayed_subject: bool = False

    @property
    def failed(self) -> list[RecipientStatus]:
        return [r for r in self.recipients if r.failed]

    @property
    def is_failure(self) -> bool:
        """A permanent failure of at least one recipient (not a delay, not a success)."""
        if self.recipients:
            return bool(self.failed)
        return not self.delayed_subject

    @property
    def is_delay(self) -> bool:
        if self.recipients:
            return not self.failed and any(r.delayed for r in self.recipients)
        return self.delayed_subject


def _strip_type(value: str | None) -> str | None:
    """'rfc822; nina@example.org' -> 'nina@example.org'; 'smtp; 550 ...' -> '550 ...'."""
    if value is None:
        return None
    text = one_line(value, MAX_FIELD)
    kind, sep, rest = text.partition(";")
    if sep and re.fullmatch(r"[A-Za-z0-9.+-]{1,40}", kind.strip()):
        text = rest.strip()
    return text or None


def _address(value: str | None) -> str | None:
    text = _strip_type(value)
    if not text:
        return None
    return text.strip().strip("<>").strip().lower() or None


def _field_blocks(part: Message) -> list[Message]:
    """The field groups of a message/delivery-status part, however the parser stored it."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)][: MAX_RECIPIENTS + 1]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload or "")
    text = text.replace("\r\n", "\n")[:200_000]
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    parser = HeaderParser(policy=compat32)
    return [parser.parsestr(b.strip() + "\n") for b in blocks[: MAX_RECIPIENTS + 1]]


def _recipient(block: Message) -> RecipientStatus | None:
    final = _address(header_text(block, "Final-Recipient"))
    original = _address(header_text(block, "Original-Recipient"))
    action = (header_text(block, "Action") or "").strip().lower() or None
    status_text = header_text(block, "Status") or ""
    m = _STATUS_RE.search(status_text)
    status = ".".join(m.groups()) if m else None
    if not (final or original or action or status):
        return None
    return RecipientStatus(
        final_recipient=final,
        original_recipient=original,
        action=action.split()[0] if action else None,
        status=status,
        diagnostic_code=_strip_type(header_text(block, "Diagnostic-Code")),
        remote_mta=_strip_type(header_text(block, "Remote-MTA")),
    )


def _returned_headers(part: Message) -> Message | None:
    ctype = part.get_content_type()
    payload = part.get_payload()
    if ctype in ("message/rfc822", "message/global"):
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        return None
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload or "")
    return HeaderParser(policy=compat32).parsestr(text[:200_000], headersonly=True)


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    m = _MSGID_RE.search(value)
    if m:
        return m.group(1)
    text = value.strip()
    return text if text and " " not in text and len(text) <= 500 else None


def _free_text(msg: Message) -> str | None:
    for part, nested in iter_parts(msg):
        if nested or part.is_multipart() or part.get_content_type() != "text/plain":
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            return raw[:20_000].decode(part.get_content_charset() or "utf-8", "replace")
        return None
    return None


def parse_delivery_report(msg: Message) -> DeliveryReport:
    """The report in a DSN; empty fields for what the mail does not say."""
    recipients: list[RecipientStatus] = []
    envelope_id: str | None = None
    original_id: str | None = None
    ours: str | None = None
    structured = False
    for part, _nested in iter_parts(msg):
        ctype = part.get_content_type()
        if ctype in _DSN_TYPES and not structured:
            structured = True
            for block in _field_blocks(part):
                if block.get("Original-Envelope-Id") and envelope_id is None:
                    envelope_id = one_line(header_text(block, "Original-Envelope-Id"), 500)
                rcpt = _recipient(block)
                if rcpt is not None and len(recipients) < MAX_RECIPIENTS:
                    recipients.append(rcpt)
        elif ctype in _RETURNED_TYPES and original_id is None:
            headers = _returned_headers(part)
            if headers is not None:
                original_id = _message_id(header_text(headers, "Message-ID"))
                ours = one_line(header_text(headers, "X-Recruitmail-Message"), 100) or None
    free = _free_text(msg)
    if original_id is None and free:
        # Non-RFC 3464 bounces quote the returned headers inline.
        m = re.search(r"(?im)^\s*Message-ID:\s*<([^<>\s]{1,500})>", free)
        original_id = m.group(1) if m else None
    if not structured and free and not recipients:
        recipients = _guess_from_text(free)
    return DeliveryReport(
        recipients=recipients,
        original_message_id=original_id,
        original_envelope_id=envelope_id,
        recruitmail_message=ours,
        structured=structured,
        free_text=free,
        delayed_subject=bool(_DELAY_SUBJECT_RE.search(header_text(msg, "Subject") or "")),
    )


def _guess_from_text(text: str) -> list[RecipientStatus]:
    """A qmail/Exim-style bounce: find an SMTP reply line with an enhanced status code."""
    m = _SMTP_LINE_RE.search(text)
    if not m:
        return []
    line = one_line(m.group(0), MAX_FIELD)
    status = _STATUS_RE.search(line)
    addr = re.search(r"<([^<>\s@]+@[^<>\s]+)>", text)
    return [RecipientStatus(
        final_recipient=addr.group(1).lower() if addr else None,
        original_recipient=None,
        action=None,
        status=".".join(status.groups()) if status else None,
        diagnostic_code=line,
        remote_mta=None,
    )]


def status_in_words(status: str | None) -> str:
    """'5.1.1' -> 'the mailbox does not exist (permanent failure, status 5.1.1)'."""
    if not status:
        return "the mail could not be delivered"
    m = _STATUS_RE.fullmatch(status)
    if not m:
        return f"the mail could not be delivered (status {status})"
    klass, subject, detail = (int(g) for g in m.groups())
    words = _DETAIL_WORDS.get((subject, detail)) or _SUBJECT_WORDS.get(subject, "the mail could not "
                                                                          "be delivered")
    kind = {2: "delivered", 4: "temporary failure", 5: "permanent failure"}[klass]
    return f"{words} ({kind}, status {status})"


def describe_failure(report: DeliveryReport, recipients: list[RecipientStatus] | None = None) -> str:
    """A recruiter-readable reason: who, what it means, what the server said."""
    chosen = recipients if recipients is not None else report.failed
    if not chosen:
        text = "The receiving mail system reported that the mail could not be delivered."
        if report.free_text:
            m = _SMTP_LINE_RE.search(report.free_text)
            if m:
                text += f" It said: {one_line(m.group(0), 500)}"
        return text
    parts = []
    for r in chosen[:5]:
        who = r.final_recipient or r.original_recipient or "the recipient"
        sentence = f"Could not be delivered to {who}: {status_in_words(r.status)}."
        if r.diagnostic_code:
            sentence += f" The receiving server said: {one_line(r.diagnostic_code, 400)}"
        parts.append(sentence)
    if len(chosen) > 5:
        parts.append(f"(and {len(chosen) - 5} more recipients)")
    return one_line(" ".join(parts), 2000)


def describe_delay(report: DeliveryReport) -> str:
    delayed = [r for r in report.recipients if r.delayed]
    if not delayed:
        return "delivery is delayed; the sending server keeps trying"
    r = delayed[0]
    who = r.final_recipient or "the recipient"
    text = f"delivery to {who} is delayed ({status_in_words(r.status)}); the sending server keeps trying"
    if r.diagnostic_code:
        text += f"; it said: {one_line(r.diagnostic_code, 300)}"
    return text


def iter_failed_addresses(report: DeliveryReport) -> Iterator[str]:
    for r in report.failed:
        for addr in (r.final_recipient, r.original_recipient):
            if addr:
                yield addr.lower()
