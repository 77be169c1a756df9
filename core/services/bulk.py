"""One email to many candidates, and rejecting many applications at once.

Everything is checked before anything is stored: every recipient's message is rendered
first, and any problem comes back as a UserError naming the application. Then all rows
go in with bulk inserts in one transaction (core.services.bulk_store), and the worker is
woken per chunk.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

from tortoise import connections
from tortoise.exceptions import IntegrityError

from core import events, model_reads
from core.errors import ErrorCode, FieldError, InputError
from core.ids import to_global_id
from core.mail.details import with_signature
from core.models import (
    Application,
    BulkOperation,
    Candidate,
    Company,
    Employee,
    Interview,
    Message,
    Position,
    RejectionReason,
    Subsidiary,
)
from core.models.enums import (
    ApplicationStatus,
    BulkOperationKind,
    BulkOperationState,
    MessageKind,
    MessageStatus,
    TemplateKind,
)
from core.services import (
    bulk_store,
    claims,
    compose,
    delivery,
    interviews,
    mail_context,
    mail_settings,
    message_checks,
    messaging,
    recording,
)
from core.services.bulk_store import Plan
from core.services.documents import StagedFile, discard_all, resolve_attachable

MAX_RECIPIENTS = 50_000
# sendBulkEmail on PostgreSQL: the drafts go to the store this many at a time, each chunk
# one COPY that PostgreSQL takes in (foreign-key checks included, which run at the end of
# each statement) while the next chunk is rendered here, passing control every
# RENDER_YIELD recipients so that the COPY can go on.
RENDER_CHUNK = 500
RENDER_YIELD = 25


def _app_path(index: int) -> tuple[str, ...]:
    return ("input", "applicationIds", str(index))


async def _applications(company_id: uuid.UUID, ids: list[uuid.UUID]
                        ) -> dict[uuid.UUID, Application]:
    """{id: application} of the company's among `ids`, each with its candidate."""
    if connections.get("default").capabilities.dialect == "postgres":
        return await model_reads.applications_with_candidates(company_id, ids)
    rows: dict[uuid.UUID, Application] = {}
    for start in range(0, len(ids), 5000):
        # With each application's candidate in the same query (one id list, not two).
        for a in await Application.filter(company_id=company_id, id__in=ids[start:start + 5000]
                                          ).select_related("candidate"):
            rows[a.id] = a
    return rows


async def _load_applications(
    company_id: uuid.UUID, ids: Sequence[uuid.UUID | None]
) -> tuple[list[tuple[int, Application]], list[FieldError]]:
    if not ids:
        return [], [FieldError(ErrorCode.INVALID_INPUT, "No applications given.",
                               ("input", "applicationIds"))]
    if len(ids) > MAX_RECIPIENTS:
        return [], [FieldError(ErrorCode.TOO_LARGE, f"At most {MAX_RECIPIENTS} applications.",
                               ("input", "applicationIds"))]
    wanted = list({i for i in ids if i is not None})
    rows = await _applications(company_id, wanted)
    errors: list[FieldError] = []
    seen: set[uuid.UUID] = set()
    found: list[tuple[int, Application]] = []
    for index, aid in enumerate(ids):
        app = rows.get(aid) if aid is not None else None
        if app is None:
            errors.append(FieldError(ErrorCode.NOT_FOUND,
                                     f"Application #{index + 1} does not exist.", _app_path(index)))
        elif app.id not in seen:
            seen.add(app.id)
            found.append((index, app))
    return found, errors


async def _related(apps: Sequence[Application]) -> tuple[dict[uuid.UUID, Candidate],
                                                         dict[uuid.UUID, Position]]:
    pos_ids = list({a.position_id for a in apps})
    cands: dict[uuid.UUID, Candidate] = {a.candidate_id: a.candidate for a in apps}
    positions = {p.id: p for p in await Position.filter(id__in=pos_ids)}
    return cands, positions


async def _renderer(
    *, plan: Plan, found: list[tuple[int, Application]], kind: MessageKind,
    template_kind: TemplateKind, template_id: uuid.UUID | None, use_template: bool,
    subject: str | None, body: str | None, reason: RejectionReason | None,
    scheduled_at: datetime | None, bulk_id: uuid.UUID, default_kind: TemplateKind | None = None,
) -> tuple[bulk_store.Render | None, list[FieldError]]:
    """What rendering needs from the database, read now; then the rendering itself, which
    reads nothing (it runs while the store's COPY uses the transaction's connection)."""
    company = plan.company
    try:
        source = await compose.resolve_source(
            company=company, kinds=(template_kind,), template_id=template_id,
            use_template=use_template, subject=subject, body=body, default_kind=default_kind)
    except InputError as exc:
        return None, exc.errors
    plan.documents = messaging.unique_documents([*source.documents, *plan.documents])
    cands, positions = await _related([a for _, a in found])
    subsidiaries = await mail_settings.subsidiaries_by_id(p.subsidiary_id
                                                          for p in positions.values())

    async def render(emit: bulk_store.Emit | None) -> list[FieldError]:
        """Every recipient's message, each in the candidate's language, into plan.drafts
        (and, while none failed, to `emit` every RENDER_CHUNK); errors name the
        application."""
        errors: list[FieldError] = []
        done = len(plan.drafts)
        for index, app in found:
            if emit is not None and not errors and len(plan.drafts) >= done + RENDER_CHUNK:
                await emit(plan.drafts[done:])
                done = len(plan.drafts)
            elif emit is not None and index % RENDER_YIELD == 0:
                await asyncio.sleep(0)  # the COPY before goes on meanwhile
            cand = cands[app.candidate_id]
            problems = message_checks.candidate_address_errors(cand, _app_path(index))
            if problems:
                gid = to_global_id("Application", app.id)
                errors += [FieldError(e.code, f"Application {gid} ({cand.full_name}): {e.message}",
                                      e.field) for e in problems]
                continue
            subsidiary = _subsidiary_of(positions.get(app.position_id), subsidiaries)
            rows = mail_context.ContextRows(company=company, candidate=cand,
                                           sender=plan.employee, application=app,
                                           position=positions.get(app.position_id),
                                           rejection_reason=reason, subsidiary=subsidiary)
            try:
                rendered = compose.compose(source, mail_context.render_context(rows))
            except InputError as exc:
                gid = to_global_id("Application", app.id)
                errors += [FieldError(e.code, f"Application {gid} ({cand.full_name}): {e.message}",
                                      (*_app_path(index), *(e.field or ())[1:]))
                           for e in exc.errors]
                continue
            plan.drafts.append(messaging.Draft(
                company=company, candidate=cand, kind=kind, subject=rendered.subject,
                body=with_signature(rendered.body, plan.employee.signature),
                sender=plan.employee, application_id=app.id, bulk_operation_id=bulk_id,
                scheduled_at=scheduled_at, subsidiary=subsidiary, owner_known=True))
        if emit is not None and not errors and len(plan.drafts) > done:
            await emit(plan.drafts[done:])
        return errors

    return render, []


def _subsidiary_of(position: Position | None,
                   subsidiaries: dict[uuid.UUID, Subsidiary]) -> Subsidiary | None:
    if position is None or position.subsidiary_id is None:
        return None
    return subsidiaries.get(position.subsidiary_id)


def _new_bulk(bulk_id: uuid.UUID, plan: Plan, kind: BulkOperationKind, when: datetime | None,
              n: int, idempotency_key: str | None, **extra: object) -> BulkOperation:
    state = (BulkOperationState.SCHEDULED if when and n else
             BulkOperationState.RUNNING if n else BulkOperationState.COMPLETED)
    return BulkOperation(id=bulk_id, company_id=plan.company.id, kind=kind, state=state,
                         total=n, queued=n, sent=0, failed=0, scheduled_at=when,
                         created_by_id=plan.employee.id, idempotency_key=idempotency_key, **extra)


async def _existing(company_id: uuid.UUID, key: str | None) -> BulkOperation | None:
    if not key:
        return None
    return await BulkOperation.get_or_none(company_id=company_id, idempotency_key=key)


async def send_bulk_email(
    *, employee: Employee, application_ids: Sequence[uuid.UUID | None],
    template_id: uuid.UUID | None = None, use_template: bool = False, subject: str | None = None,
    body: str | None = None, document_ids: Sequence[uuid.UUID | None] = (),
    new_files: Sequence[StagedFile] = (), scheduled_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> BulkOperation:
    """One personalised email per application's candidate; all or nothing."""
    try:
        errors = message_checks.check_idempotency_key(idempotency_key, ("input", "idempotencyKey"))
        existing = None if errors else await _existing(employee.company_id, idempotency_key)
        if existing is not None:
            discard_all(new_files)
            return existing
        company = await Company.get(id=employee.company_id)
        found, e = await _load_applications(company.id, application_ids)
        errors += e
        when, e = message_checks.check_schedule(scheduled_at, ("input", "scheduledAt"))
        errors += e
        docs, e = await resolve_attachable(employee, list(document_ids), candidate_id=None,
                                           path=("input", "documentIds"))
        errors += e
        plan = Plan(company, employee, [a for _, a in found], documents=docs)
        bulk_id = uuid.uuid4()
        render: bulk_store.Render | None = None
        if not errors:
            render, errors = await _renderer(
                plan=plan, found=found, kind=MessageKind.BULK,
                template_kind=TemplateKind.MESSAGE, template_id=template_id,
                use_template=use_template, subject=subject, body=body, reason=None,
                scheduled_at=when, bulk_id=bulk_id)
        if errors or render is None:
            raise InputError(errors)
    except BaseException:
        discard_all(new_files)
        raise
    # Every application found gets its message, or the call fails as a whole.
    bulk = _new_bulk(bulk_id, plan, BulkOperationKind.EMAIL, when, len(found), idempotency_key)
    try:
        # Rendered while the rows go in (core.services.bulk_store.store).
        await bulk_store.store(plan, bulk, new_files=new_files, reject=None, anonymize_now=[],
                               render=render)
    except InputError:  # a recipient's message could not be made: nothing was stored
        discard_all(new_files)
        raise
    except IntegrityError:
        discard_all(new_files)
        existing = await _existing(employee.company_id, idempotency_key)
        if existing is None:
            raise
        return existing
    return bulk


async def reject_applications(
    *, employee: Employee, application_ids: Sequence[uuid.UUID | None],
    reason_id: uuid.UUID | None, note: str | None = None, anonymize: bool = False,
    send_email: bool = False, template_id: uuid.UUID | None = None, use_template: bool = False,
    scheduled_at: datetime | None = None, idempotency_key: str | None = None,
) -> BulkOperation:
    """Reject applications with a reason; optionally a rejection email (from template_id,
    else the company's default REJECTION template or the starter text), now or later, and
    anonymisation, which waits until that candidate's rejection email reached SENT."""
    errors = message_checks.check_idempotency_key(idempotency_key, ("input", "idempotencyKey"))
    existing = None if errors else await _existing(employee.company_id, idempotency_key)
    if existing is not None:
        return existing
    company = await Company.get(id=employee.company_id)
    reason = await RejectionReason.get_or_none(id=reason_id, company_id=company.id) \
        if reason_id else None
    if reason is None:
        errors.append(FieldError(ErrorCode.NOT_FOUND, "No such rejection reason.",
                                 ("input", "reasonId")))
    if note is not None and len(note) > 10_000:
        errors.append(FieldError(ErrorCode.TOO_LARGE, "The note is too long.", ("input", "note")))
    found, e = await _load_applications(company.id, application_ids)
    errors += e
    for index, app in found:
        if app.status == ApplicationStatus.REJECTED:
            errors.append(FieldError(
                ErrorCode.INVALID_STATE,
                f"Application {to_global_id('Application', app.id)} is already rejected.",
                _app_path(index)))
    when, e = message_checks.check_schedule(scheduled_at, ("input", "scheduledAt"))
    errors += e
    if not send_email and (template_id is not None or use_template or scheduled_at is not None):
        errors.append(FieldError(ErrorCode.INVALID_INPUT,
                                 "templateId and scheduledAt need sendEmail: true.",
                                 ("input", "sendEmail")))
    plan = Plan(company, employee, [a for _, a in found])
    bulk_id = uuid.uuid4()
    if not errors and send_email:
        render, errors = await _renderer(
            plan=plan, found=found, kind=MessageKind.REJECTION,
            template_kind=TemplateKind.REJECTION, template_id=template_id,
            use_template=use_template, subject=None, body=None, reason=reason,
            scheduled_at=when, bulk_id=bulk_id,
            # Without templateId: the company's default REJECTION template, else the starter.
            default_kind=TemplateKind.REJECTION)
        if render is not None:
            errors = await render(None)
    if errors:
        raise InputError(errors)
    assert reason is not None
    cancelled: list[Interview] = []
    if anonymize:
        # Erasing a candidate ends their interviews: the calendar gets its CANCEL first.
        cancelled, notices = await interviews.cancellations_for(
            [a.id for a in plan.applications], employee, bulk_operation_id=bulk_id)
        plan.drafts += notices
    bulk = _new_bulk(bulk_id, plan, BulkOperationKind.REJECTION, when, len(plan.drafts),
                     idempotency_key, rejection_reason_id=reason.id, rejection_note=note,
                     anonymize=anonymize, send_email=send_email)
    anonymize_now = [a.candidate_id for a in plan.applications
                     if a.candidate_id not in {d.candidate.id for d in plan.drafts}] \
        if anonymize else []
    try:
        await bulk_store.store(plan, bulk, new_files=(), reject=(reason, note), anonymize_now=anonymize_now,
                     cancel_interviews=cancelled)
    except IntegrityError:
        existing = await _existing(employee.company_id, idempotency_key)
        if existing is None:
            raise
        return existing
    return bulk


_BEFORE_ERASING = (MessageKind.REJECTION, MessageKind.INTERVIEW_CANCELLATION)


async def after_rejection_sent(messages: Sequence[Message | claims.Outgoing]) -> int:
    """Anonymise the candidates whose last mail of a rejection operation asking for it (the
    rejection email, the cancellations of their interviews) was just SENT. Called by the
    worker after the SENT write. A candidate with a mail of the operation still waiting,
    or FAILED (until it is retried), waits."""
    rejections = [m for m in messages if m.kind in _BEFORE_ERASING and m.bulk_operation_id]
    if not rejections:
        return 0
    ops = {b.id: b for b in await BulkOperation.filter(
        id__in=list({m.bulk_operation_id for m in rejections}), anonymize=True)}
    done = [m for m in rejections if m.bulk_operation_id in ops]
    waiting = set(await Message.filter(
        bulk_operation_id__in=list(ops), candidate_id__in=list({m.candidate_id for m in done}),
        status__in=[MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING,
                    MessageStatus.FAILED],
    ).values_list("candidate_id", flat=True)) if done else set()
    by_company: dict[uuid.UUID, list[uuid.UUID]] = {}
    for m in done:
        if m.candidate_id not in waiting:
            by_company.setdefault(m.company_id, []).append(m.candidate_id)
    if not by_company:
        return 0
    from core.services.anonymize import anonymize_candidates

    for company_id, candidate_ids in by_company.items():
        await anonymize_candidates(candidate_ids, company_id=company_id)
    return sum(len(v) for v in by_company.values())


async def cancel_bulk_operation(*, employee: Employee, bulk_id: uuid.UUID | None) -> BulkOperation:
    """Cancel a scheduled operation: all of its messages, or none when it already started."""
    bulk = await BulkOperation.get_or_none(id=bulk_id, company_id=employee.company_id) \
        if bulk_id else None
    if bulk is None:
        raise InputError(FieldError(ErrorCode.NOT_FOUND, "No such bulk operation.", ("id",)))
    if not await delivery.cancel_bulk(bulk.id):
        raise InputError(FieldError(ErrorCode.INVALID_STATE,
                                    f"The operation is {bulk.state.value}; only a scheduled one "
                                    "can be cancelled.", ("id",)))
    await recording.refresh_bulk_state(bulk.id)
    await events.publish(bulk.company_id, events.BULK_PROGRESS, bulk_operation_id=bulk.id)
    await bulk.refresh_from_db()
    return bulk
