"""Writing to candidates: validate, render, store the outbox row, wake the worker."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import queue
from core.errors import ErrorCode, FieldError, InputError
from core.mail.details import with_signature
from core.models import Application, Candidate, Company, Document, Employee, Message, Subsidiary
from core.models.enums import MessageDirection, MessageKind, MessageStatus
from core.services import delivery, mail_settings, recording
from core.services.documents import StagedFile, create_documents, discard_all
from core.services.mail_settings import MailOwner
from core.services.message_checks import (
    candidate_address_errors,
    check_addresses,
    check_idempotency_key,
    check_schedule,
)
from core.settings import get_settings


@dataclass
class Draft:
    """Everything needed to store one outbound message; content already rendered."""

    company: Company
    candidate: Candidate
    kind: MessageKind
    subject: str
    body: str
    sender: Employee | None = None
    application_id: uuid.UUID | None = None
    interview_id: uuid.UUID | None = None
    bulk_operation_id: uuid.UUID | None = None
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    scheduled_at: datetime | None = None
    idempotency_key: str | None = None
    documents: list[Document] = field(default_factory=list)
    ics: str | None = None
    ics_method: str | None = None
    body_html: str | None = None
    # Uploads staged on disk; their Document rows are created with the message.
    new_files: list[StagedFile] = field(default_factory=list)
    # The subsidiary of the application's position, the mail goes out under it; found by
    # resolve_owners (from the application) unless the caller set it (owner_known).
    subsidiary: Subsidiary | None = None
    owner_known: bool = False


# --- the owner a mail goes out under (company or subsidiary) ----------------------------


async def resolve_owners(drafts: Sequence[Draft]) -> None:
    """Set each draft's subsidiary from its application's position (one query)."""
    todo = [d for d in drafts if not d.owner_known and d.application_id is not None]
    for d in drafts:
        d.owner_known = True
    if not todo:
        return
    pairs = await Application.filter(
        id__in=list({d.application_id for d in todo}),
        position__subsidiary_id__isnull=False).values_list("id", "position__subsidiary_id")
    if not pairs:
        return
    subs = await mail_settings.subsidiaries_by_id(s for _, s in pairs)
    by_app = {a: subs.get(s) for a, s in pairs}
    for d in todo:
        sub = by_app.get(d.application_id)
        if sub is not None and sub.company_id == d.company.id:
            d.subsidiary = sub


def message_values(draft: Draft, at: datetime | None = None,
                   mid: uuid.UUID | None = None) -> dict[str, Any]:
    """The column values of a new outbox row for the draft (status SCHEDULED or QUEUED);
    the draft's owner must be resolved (resolve_owners)."""
    assert draft.owner_known or draft.application_id is None, "resolve_owners first"
    from_name, from_address = MailOwner(draft.company, draft.subsidiary).identity(draft.sender)
    mid = mid or uuid.uuid4()
    at = at or recording.now()
    return {
        "id": mid,
        "company_id": draft.company.id,
        "candidate_id": draft.candidate.id,
        "application_id": draft.application_id,
        "interview_id": draft.interview_id,
        "bulk_operation_id": draft.bulk_operation_id,
        "sender_id": draft.sender.id if draft.sender else None,
        "subsidiary_id": draft.subsidiary.id if draft.subsidiary else None,
        "kind": draft.kind,
        "direction": MessageDirection.OUTBOUND,
        "status": MessageStatus.SCHEDULED if draft.scheduled_at else MessageStatus.QUEUED,
        "from_name": from_name,
        "from_address": from_address,
        "to_addrs": [draft.candidate.email],
        "cc_addrs": list(draft.cc),
        "bcc_addrs": list(draft.bcc),
        "subject": draft.subject,
        "body": draft.body,
        "body_html": draft.body_html,
        "ics": draft.ics,
        "ics_method": draft.ics_method,
        "rfc_message_id": f"{mid.hex}@{get_settings().mail_domain}",
        "in_reply_to": None,
        "scheduled_at": draft.scheduled_at,
        "sent_at": None,
        "attempts": 0,
        "next_attempt_at": None,
        "lease_until": None,
        "claim_token": None,
        "error": None,
        "idempotency_key": draft.idempotency_key,
        "created_at": at,
        "updated_at": at,
    }


def new_message(draft: Draft) -> Message:
    """An unsaved outbox row for the draft."""
    return Message(**message_values(draft))


async def store_and_wake(
    drafts: Sequence[Draft], *, also: Callable[[list[Message]], Awaitable[None]] | None = None
) -> list[Message]:
    """Insert the drafts' rows and first events in one transaction (with `also`, more writes
    that must commit together with them); enqueue after commit."""
    await resolve_owners(drafts)
    messages = [new_message(d) for d in drafts]
    async with in_transaction():
        for d in drafts:
            if d.new_files:
                d.documents = [*d.documents, *await create_documents(
                    d.new_files, company_id=d.company.id, candidate_id=d.candidate.id,
                    uploaded_by=d.sender.id if d.sender else None)]
        await Message.bulk_create(messages, batch_size=500)
        for m in messages:
            m._saved_in_db = True  # ids are ours (uuid4), so the rows are addressable now
        links = [(m, d.documents) for m, d in zip(messages, drafts, strict=True) if d.documents]
        for m, docs in links:
            await m.attachments.add(*docs)
        transitions = await recording.record_created(messages)
        if also is not None:
            await also(messages)
    await after_commit(messages, transitions)
    return messages


async def after_commit(
    messages: Sequence[Message], transitions: Sequence[recording.Transition]
) -> None:
    await recording.publish_created(transitions)
    for m in messages:
        await queue.enqueue_send(m.id, at=m.scheduled_at)


async def find_by_idempotency_key(company_id: uuid.UUID, key: str | None) -> Message | None:
    if not key:
        return None
    return await Message.get_or_none(company_id=company_id, idempotency_key=key)


async def store_one(
    draft: Draft, *, also: Callable[[list[Message]], Awaitable[None]] | None = None
) -> Message:
    """Store one message; a concurrent twin with the same idempotency key wins the race.
    Staged uploads are removed from disk when nothing was stored."""
    try:
        return (await store_and_wake([draft], also=also))[0]
    except IntegrityError:
        discard_all(draft.new_files)
        existing = await find_by_idempotency_key(draft.company.id, draft.idempotency_key)
        if existing is None:
            raise
        return existing
    except BaseException:
        discard_all(draft.new_files)
        raise


# --- the API-facing operations -----------------------------------------------------------


async def load_candidate(
    company_id: uuid.UUID, candidate_id: uuid.UUID | None, path: tuple[str, ...]
) -> Candidate:
    cand = None
    if candidate_id is not None:
        cand = await Candidate.get_or_none(id=candidate_id, company_id=company_id)
    if cand is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such candidate.", path))
    return cand


async def load_application(
    company_id: uuid.UUID, application_id: uuid.UUID | None, candidate_id: uuid.UUID,
    path: tuple[str, ...],
) -> Application | None:
    if application_id is None:
        return None
    app = await Application.get_or_none(
        id=application_id, company_id=company_id, candidate_id=candidate_id
    )
    if app is None:
        raise InputError(
            FieldError(ErrorCode.NOT_FOUND, "No such application for this candidate.", path)
        )
    return app


@dataclass
class Envelope:
    """The checked parts every way of sending shares."""

    company: Company
    candidate: Candidate
    application: Application | None
    cc: list[str]
    bcc: list[str]
    when: datetime | None
    documents: list[Document]
    errors: list[FieldError]


async def check_envelope(
    *, employee: Employee, candidate: Candidate, application: Application | None,
    cc: Sequence[str] | None, bcc: Sequence[str] | None, scheduled_at: datetime | None,
    document_ids: Sequence[uuid.UUID | None], path: tuple[str, ...] = ("input",),
) -> Envelope:
    from core.services.documents import resolve_attachable

    company = await Company.get(id=employee.company_id)
    errors = candidate_address_errors(candidate, (*path, "candidateId"))
    cc_list, e = check_addresses(cc, (*path, "cc"))
    errors += e
    bcc_list, e = check_addresses(bcc, (*path, "bcc"))
    errors += e
    when, e = check_schedule(scheduled_at, (*path, "scheduledAt"))
    errors += e
    docs, e = await resolve_attachable(employee, list(document_ids), candidate_id=candidate.id,
                                       path=(*path, "documentIds"))
    errors += e
    return Envelope(company, candidate, application, cc_list, bcc_list, when, docs, errors)


async def send_message(
    *,
    employee: Employee,
    candidate_id: uuid.UUID | None,
    subject: str | None,
    body: str | None,
    application_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
    use_template: bool = False,
    cc: Sequence[str] | None = None,
    bcc: Sequence[str] | None = None,
    scheduled_at: datetime | None = None,
    idempotency_key: str | None = None,
    document_ids: Sequence[uuid.UUID | None] = (),
    new_files: Sequence[StagedFile] = (),
    kind: MessageKind = MessageKind.MESSAGE,
) -> Message:
    """Send (or schedule) a message to a candidate, written or from a template.

    Raises InputError and writes nothing (staged uploads are removed) when anything is off.
    `use_template` says a template id was given at all (a malformed id is then NOT_FOUND).
    """
    from core.models import Position
    from core.models.enums import TemplateKind
    from core.services import compose, mail_context

    p = ("input",)
    try:
        errors: list[FieldError] = check_idempotency_key(idempotency_key, (*p, "idempotencyKey"))
        if not errors:
            existing = await find_by_idempotency_key(employee.company_id, idempotency_key)
            if existing is not None:
                discard_all(new_files)
                return existing
        company = await Company.get(id=employee.company_id)
        candidate = await load_candidate(company.id, candidate_id, (*p, "candidateId"))
        application = await load_application(company.id, application_id, candidate.id,
                                              (*p, "applicationId"))
        env = await check_envelope(employee=employee, candidate=candidate, application=application,
                                   cc=cc, bcc=bcc, scheduled_at=scheduled_at,
                                   document_ids=document_ids)
        errors += env.errors
        source = None
        try:
            # Interview mails carry a calendar object: they have their own mutations.
            source = await compose.resolve_source(
                company=company, kinds=(TemplateKind.MESSAGE, TemplateKind.REJECTION),
                template_id=template_id, use_template=use_template, subject=subject, body=body)
        except InputError as exc:
            errors += exc.errors
        if errors or source is None:
            raise InputError(errors)
        position = await Position.get(id=application.position_id) if application else None
        rows = mail_context.ContextRows(
            company=company, candidate=candidate, sender=employee, application=application,
            position=position, subsidiary=await mail_settings.subsidiary_of_position(position))
        composed = compose.compose(source, mail_context.render_context(rows))
    except BaseException:
        discard_all(new_files)
        raise
    draft = Draft(
        company=company,
        candidate=candidate,
        kind=kind,
        subject=composed.subject,
        body=with_signature(composed.body, employee.signature),
        sender=employee,
        application_id=application.id if application else None,
        cc=env.cc,
        bcc=env.bcc,
        scheduled_at=env.when,
        idempotency_key=idempotency_key,
        documents=unique_documents([*source.documents, *env.documents]),
        new_files=list(new_files),
    )
    return await store_one(draft)


def unique_documents(docs: Sequence[Document]) -> list[Document]:
    seen: set[uuid.UUID] = set()
    out = []
    for d in docs:
        if d.id not in seen:
            seen.add(d.id)
            out.append(d)
    return out


async def _own_message_in(employee: Employee, message_id: uuid.UUID | None,
                           status: MessageStatus | tuple[MessageStatus, ...],
                           action: str) -> Message:
    """The employee's company's message, in `status` (one of them); NOT_FOUND /
    INVALID_STATE otherwise."""
    path = ("id",)
    statuses = status if isinstance(status, tuple) else (status,)
    msg = None
    if message_id is not None:
        msg = await Message.get_or_none(id=message_id, company_id=employee.company_id)
    if msg is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such message.", path))
    if msg.status not in statuses:
        wanted = " or ".join(s.value.lower() for s in statuses)
        raise InputError(FieldError(
            ErrorCode.INVALID_STATE,
            f"Only a {wanted} message can be {action}; this one is {msg.status.value}.", path))
    return msg


async def retry_message(*, employee: Employee, message_id: uuid.UUID | None) -> Message:
    path = ("id",)
    # A bounce can be passing (a full mailbox, a greylisting relay): it may be retried too.
    msg = await _own_message_in(employee, message_id,
                                (MessageStatus.FAILED, MessageStatus.BOUNCED), "retried")
    if not msg.to_addrs or await Candidate.filter(id=msg.candidate_id,
                                                  anonymized_at__isnull=False).exists():
        raise InputError(FieldError(ErrorCode.INVALID_STATE,
                                    "The candidate was anonymised; there is no one to send to.",
                                    path))
    moved = await delivery.requeue_failed(msg.id)
    if moved is None:
        raise InputError(FieldError(ErrorCode.INVALID_STATE, "The message changed meanwhile.", path))
    await queue.enqueue_send(moved.id)
    return moved


async def cancel_scheduled_message(*, employee: Employee, message_id: uuid.UUID | None) -> Message:
    path = ("id",)
    msg = await _own_message_in(employee, message_id, MessageStatus.SCHEDULED, "cancelled")
    moved = await delivery.cancel_scheduled(msg.id)
    if moved is None:
        raise InputError(
            FieldError(ErrorCode.INVALID_STATE, "The message is already on its way.", path)
        )
    return moved
