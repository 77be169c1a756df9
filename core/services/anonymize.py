"""Erasing candidates' personal data while keeping the rows statistics are made of.

After `anonymize_candidates` no name, email address, message text, comment or document of
the candidates is left in the database (a pg_dump / sqlite `.dump`, and on SQLite the raw
file) or in the blob directory. What stays: the candidate row (anonymized_at set), message
rows with kind/direction/status/timestamps/attempts, their status history without details,
applications with status/rejection reason/rejected_at, interviews with times and answers.

Decisions worth knowing:
- Interview titles are recruiter-written; one is replaced by "Interview" only when it
  names the candidate (whole-word match of the name, its longer parts, the address or its
  local part); the same check clears location and video link.
- Inbound messages also lose their Message-ID (the candidate's mail program made it, often
  from their address); outbound ones keep ours (a uuid at our domain).
- BulkOperation.rejection_note is per operation, written for many candidates, and is
  left alone; the per-application copy (Application.rejection_note) is erased.
- A document is the candidate's when Document.candidate_id says so, or when it is attached
  to messages of this one candidate only and to no template; a document shared with
  other candidates' messages (a bulk attachment) or with a template stays.
- Messages still waiting (SCHEDULED, QUEUED) are CANCELLED: their text is gone and an
  erased candidate must not be mailed. A message being sent right now (SENDING) keeps its
  status; the worker may write an SMTP answer into its error/history when it finishes, so
  those are returned in `in_flight_message_ids` and a second run (harmless) clears them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import OperationalError
from tortoise.expressions import Q, Subquery
from tortoise.functions import Lower
from tortoise.transactions import in_transaction

from core.blobs import delete_blob
from core.models import (
    Application,
    Candidate,
    Document,
    DocumentGrant,
    InboundEmail,
    Interview,
    Message,
    MessageEvent,
)
from core.models.enums import MessageDirection, MessageStatus
from core.services import recording

log = logging.getLogger(__name__)

RETRIES = 3
CHUNK = 500  # candidates per transaction; keeps IN lists well under SQLite's variable limit
ANONYMIZED_SUBJECT = "[anonymized]"
ANONYMIZED_TITLE = "Interview"
CANCEL_DETAIL = "cancelled: candidate anonymised"
_PARTICLES = {"van", "von", "der", "den", "del", "das", "dos", "les", "bin", "ibn", "ter", "ten"}


@dataclass
class AnonymizeResult:
    """What one call did (rows touched; a second run reports rows touched again)."""

    candidates: int = 0  # found in the company and scrubbed (already anonymised included)
    newly_anonymized: int = 0
    missing: list[uuid.UUID] = field(default_factory=list)  # not candidates of the company
    messages: int = 0
    messages_cancelled: int = 0
    events: int = 0
    applications: int = 0
    interviews: int = 0
    interview_titles: int = 0
    inbound_emails: int = 0
    documents: int = 0
    blobs: int = 0
    in_flight_message_ids: list[uuid.UUID] = field(default_factory=list)

    def add(self, other: AnonymizeResult) -> None:
        for name in ("candidates", "newly_anonymized", "messages", "messages_cancelled", "events",
                     "applications", "interviews", "interview_titles", "inbound_emails",
                     "documents", "blobs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.in_flight_message_ids += other.in_flight_message_ids


async def anonymize_candidate(candidate_id: uuid.UUID, *, company_id: uuid.UUID) -> AnonymizeResult:
    """`anonymize_candidates` for one candidate."""
    return await anonymize_candidates([candidate_id], company_id=company_id)


async def anonymize_candidates(
    candidate_ids: Sequence[uuid.UUID], *, company_id: uuid.UUID
) -> AnonymizeResult:
    """Erase the personal data of these candidates of `company_id` (others are ignored and
    listed in `missing`). Idempotent.

    Each chunk of up to CHUNK candidates is one transaction of set-wise UPDATE/DELETEs;
    blob files are removed after its commit, status events published after it.

    Storage below the dump: on SQLite the connection runs with `secure_delete` so freed
    and overwritten cells are zeroed, and the WAL is checkpointed and truncated at the end
    (best effort: another process reading at that moment keeps the WAL until a later
    checkpoint). `VACUUM` rebuilds the file from live rows only, for the last word.
    On PostgreSQL pg_dump shows only live rows, but dead tuple versions stay in the table
    files until VACUUM reclaims them (autovacuum does, eventually; run `VACUUM` on message,
    message_event, inbound_email, document, candidate, application, interview when the
    files on disk must be clean now).
    """
    ids = list(dict.fromkeys(candidate_ids))
    result = AnonymizeResult()
    if not ids:
        return result
    conn = Tortoise.get_connection("default")
    sqlite = conn.capabilities.dialect == "sqlite"
    if sqlite:
        # Per connection; Tortoise keeps one SQLite connection per process, so this stays on.
        await conn.execute_script("PRAGMA secure_delete = ON")
    found: set[uuid.UUID] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        people = await Candidate.filter(company_id=company_id, id__in=chunk).values(
            "id", "first_name", "last_name", "email"
        )
        if not people:
            continue
        found.update(p["id"] for p in people)
        part, blob_keys, transitions = await _with_retry(people, company_id)
        # After the commit: a rollback must not leave rows pointing at deleted files.
        for key in blob_keys:
            try:
                delete_blob(key)
                part.blobs += 1
            except (OSError, ValueError):
                log.warning("could not delete blob %s of an anonymised candidate", key,
                            exc_info=True)
        await recording.publish(transitions)
        result.add(part)
    result.missing = [i for i in ids if i not in found]
    if sqlite:
        # secure_delete zeroes deleted records, but when SQLite rebalances b-tree pages it
        # copies records and leaves the old copies behind; rebuilding the indexes over the
        # erased columns (freed pages are zeroed) leaves none readable in the file.
        await conn.execute_script("REINDEX candidate; REINDEX message; REINDEX inbound_email;")
        await _sqlite_checkpoint(conn)
    log.info("anonymised %d candidates (%d new) of company %s", result.candidates,
             result.newly_anonymized, company_id)
    return result


async def _with_retry(
    people: list[dict[str, Any]], company_id: uuid.UUID
) -> tuple[AnonymizeResult, list[str], list[recording.Transition]]:
    """A chunk's transaction, again when it lost a deadlock to a worker's multi-row UPDATE
    (PostgreSQL) or found the SQLite file locked; everything in it is idempotent."""
    for attempt in range(1, RETRIES + 1):
        try:
            return await _anonymize_chunk(people, company_id)
        except OperationalError:
            if attempt == RETRIES:
                raise
            log.warning("anonymisation chunk failed (attempt %d), retrying", attempt,
                        exc_info=True)
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


async def _anonymize_chunk(
    people: list[dict[str, Any]], company_id: uuid.UUID
) -> tuple[AnonymizeResult, list[str], list[recording.Transition]]:
    res = AnonymizeResult(candidates=len(people))
    cids = [p["id"] for p in people]
    at = recording.now()
    async with in_transaction() as tx:
        # Lock the waiting and in-flight messages: a worker's claim (a conditional UPDATE on
        # status) then waits for this commit and finds the message CANCELLED.
        busy = await Message.filter(
            candidate_id__in=cids,
            status__in=[MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING],
        ).order_by("id").select_for_update().only(
            "id", "company_id", "candidate_id", "bulk_operation_id", "status")
        res.in_flight_message_ids = [m.id for m in busy if m.status == MessageStatus.SENDING]

        msg_ids = Subquery(Message.filter(candidate_id__in=cids).values("id"))
        res.events = await MessageEvent.filter(message_id__in=msg_ids).update(detail=None)

        transitions = await _cancel_waiting(
            [m for m in busy if m.status != MessageStatus.SENDING], at)
        res.messages_cancelled = len(transitions)

        res.messages = await Message.filter(candidate_id__in=cids).update(
            subject=ANONYMIZED_SUBJECT, body="", body_html=None, ics=None, to_addrs=[],
            cc_addrs=[], bcc_addrs=[], error=None, idempotency_key=None, in_reply_to=None,
        )
        # The sender of an inbound message is the candidate, and their mail program made its
        # Message-ID (often from their address); outbound ones name our side, our ids.
        await Message.filter(candidate_id__in=cids, direction=MessageDirection.INBOUND).update(
            from_name="", from_address="", rfc_message_id=""
        )

        app_ids = Subquery(Application.filter(candidate_id__in=cids).values("id"))
        res.applications = await Application.filter(candidate_id__in=cids).update(
            rejection_note=None
        )
        res.interviews = await Interview.filter(application_id__in=app_ids).update(
            candidate_comment=None
        )
        res.interview_titles = await _scrub_interview_texts(people)

        res.inbound_emails = await _delete_inbound(people, company_id, msg_ids, app_ids)

        docs = await _personal_documents(tx, cids, company_id)
        blob_keys = await _delete_documents(tx, docs)
        res.documents = len(docs)

        await Candidate.filter(id__in=cids).update(first_name=None, last_name=None, email=None)
        res.newly_anonymized = await Candidate.filter(
            id__in=cids, anonymized_at__isnull=True
        ).update(anonymized_at=at)
    return res, blob_keys, transitions


async def _cancel_waiting(waiting: list[Message], at: Any) -> list[recording.Transition]:
    """SCHEDULED/QUEUED → CANCELLED, one UPDATE per previous status (rows are locked)."""
    transitions: list[recording.Transition] = []
    for status in (MessageStatus.SCHEDULED, MessageStatus.QUEUED):
        rows = [m for m in waiting if m.status == status]
        if not rows:
            continue
        await Message.filter(id__in=[m.id for m in rows], status=status).update(
            status=MessageStatus.CANCELLED, updated_at=at, lease_until=None, next_attempt_at=None
        )
        transitions += [
            recording.Transition(m.id, m.company_id, m.candidate_id, m.bulk_operation_id,
                                status, MessageStatus.CANCELLED, at, CANCEL_DETAIL)
            for m in rows
        ]
    # The status history and bulk counters move exactly as for any other transition.
    await recording.record(transitions)
    return transitions


def _name_needles(person: dict[str, Any]) -> list[str]:
    """Lower-case names and addresses whose presence in a free text names the candidate."""
    needles: set[str] = set()
    for value in (person.get("first_name"), person.get("last_name")):
        if value and value.strip():
            needles.add(" ".join(value.lower().split()))
            # Parts too ("de Vries" → "vries"), but not particles that are ordinary words.
            needles.update(t for t in value.lower().split() if len(t) >= 3 and t not in _PARTICLES)
    email = (person.get("email") or "").strip().lower()
    if email:
        needles.update({email, email.split("@", 1)[0]})
    return sorted(n for n in needles if n)


def _names(text: str | None, needles: Iterable[str]) -> bool:
    """Whole words only: "Al" names "Interview with Al" but not "Data Analyst"."""
    low = (text or "").lower()
    return bool(low) and any(
        re.search(rf"(?<!\w){re.escape(n)}(?!\w)", low) for n in needles
    )


async def _scrub_interview_texts(people: list[dict[str, Any]]) -> int:
    """Titles/locations/links that contain the candidate's name or address; the rest of
    what recruiters wrote there stays. Returns the number of interviews changed."""
    needles = {p["id"]: _name_needles(p) for p in people}
    if not any(needles.values()):
        return 0  # already anonymised: nothing left to look for
    rows = await Interview.filter(application__candidate_id__in=list(needles)).values(
        "id", "title", "location", "video_link", "application__candidate_id"
    )
    titles, locations, links = [], [], []
    for r in rows:
        n = needles.get(r["application__candidate_id"], [])
        if _names(r["title"], n):
            titles.append(r["id"])
        if _names(r["location"], n):
            locations.append(r["id"])
        if _names(r["video_link"], n):
            links.append(r["id"])
    if titles:
        await Interview.filter(id__in=titles).update(title=ANONYMIZED_TITLE)
    if locations:
        await Interview.filter(id__in=locations).update(location=None)
    if links:
        await Interview.filter(id__in=links).update(video_link=None)
    return len(set(titles) | set(locations) | set(links))


async def _delete_inbound(
    people: list[dict[str, Any]], company_id: uuid.UUID, msg_ids: Subquery, app_ids: Subquery
) -> int:
    """Raw copies hold everything: those of the candidate, of their messages and interviews,
    and unrouted ones whose envelope sender is the candidate's address."""
    cids = [p["id"] for p in people]
    iv_ids = Subquery(Interview.filter(application_id__in=app_ids).values("id"))
    linked = Q(candidate_id__in=cids) | Q(message_id__in=msg_ids) | Q(interview_id__in=iv_ids)
    n = await InboundEmail.filter(linked).delete()
    senders: set[str] = set()
    for p in people:
        email = (p.get("email") or "").strip().lower()
        if email:
            senders.update({email, f"<{email}>"})
    if senders:
        ids = await InboundEmail.annotate(sender=Lower("mail_from")).filter(
            Q(company_id=company_id) | Q(company_id__isnull=True), sender__in=sorted(senders),
        ).values_list("id", flat=True)
        if ids:
            n += await InboundEmail.filter(id__in=list(ids)).delete()
    return n


def _params(tx: BaseDBAsyncClient, values: Sequence[uuid.UUID], first: int = 1) -> tuple[str, list]:
    """Placeholders and values for `IN (...)` in raw SQL on either engine."""
    if tx.capabilities.dialect == "postgres":
        return ", ".join(f"${i}" for i in range(first, first + len(values))), list(values)
    return ", ".join("?" for _ in values), [str(v) for v in values]


async def _personal_documents(
    tx: BaseDBAsyncClient, cids: list[uuid.UUID], company_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    """(id, blob_key) of the candidates' documents: their own, and those attached to the
    messages of exactly one candidate (one of these) and to no template."""
    own = await Document.filter(company_id=company_id, candidate_id__in=cids).values_list(
        "id", "blob_key"
    )
    # Placeholders in the order they appear in the text (SQLite's "?" are positional).
    company_mark, values = _params(tx, [company_id])
    marks, more = _params(tx, cids, first=2)
    values += more
    rows = await tx.execute_query_dict(
        f"""
        SELECT d.id, d.blob_key FROM document d
        WHERE d.candidate_id IS NULL AND d.company_id = {company_mark}
          AND d.id IN (SELECT ma.document_id FROM message_attachment ma
                       JOIN message m ON m.id = ma.message_id
                       WHERE m.candidate_id IN ({marks}))
          AND NOT EXISTS (SELECT 1 FROM email_template_attachment ta
                          WHERE ta.document_id = d.id)
          AND (SELECT COUNT(DISTINCT m2.candidate_id) FROM message_attachment ma2
               JOIN message m2 ON m2.id = ma2.message_id
               WHERE ma2.document_id = d.id) = 1
        """,
        values,
    )
    out: dict[uuid.UUID, str] = {uuid.UUID(str(i)): k for i, k in own}
    for r in rows:
        out[uuid.UUID(str(r["id"]))] = r["blob_key"]
    return list(out.items())


async def _delete_documents(tx: BaseDBAsyncClient, docs: list[tuple[uuid.UUID, str]]) -> list[str]:
    """Delete the rows with their links and grants; the blob keys no row uses any more."""
    if not docs:
        return []
    ids = [d for d, _ in docs]
    marks, values = _params(tx, ids)
    # Explicit rather than trusting ON DELETE CASCADE being enforced on every engine.
    await tx.execute_query(f"DELETE FROM message_attachment WHERE document_id IN ({marks})", values)
    await tx.execute_query(
        f"DELETE FROM email_template_attachment WHERE document_id IN ({marks})", values
    )
    await DocumentGrant.filter(document_id__in=ids).delete()
    await Document.filter(id__in=ids).delete()
    keys = {k for _, k in docs}
    still_used = set(await Document.filter(blob_key__in=list(keys)).values_list("blob_key", flat=True))
    return sorted(k for k in keys - still_used if k)  # type: ignore[operator]


async def _sqlite_checkpoint(conn: BaseDBAsyncClient) -> None:
    """Copy the WAL into the file and truncate it, so old page images do not linger there.
    Another process reading at that moment can keep frames alive; then it happens later."""
    try:
        await conn.execute_script("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception:  # best effort: the data is already erased from the live database
        log.warning("WAL checkpoint after anonymisation failed", exc_info=True)
