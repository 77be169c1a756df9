"""DataLoaders, created per request (per connection on websockets, without a cache there):
every lookup by id is batched and scoped to the viewer's company."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.expressions import F, Q
from tortoise.models import Model

from core import models

M = TypeVar("M", bound=Model)


def _by_id(model: type[M], company_id: uuid.UUID
           ) -> Callable[[Sequence[uuid.UUID]], Awaitable[list[M | None]]]:
    async def load(keys: Sequence[uuid.UUID]) -> list[M | None]:
        rows = await model.filter(id__in=list(set(keys)), company_id=company_id)
        found: dict[Any, M] = {r.pk: r for r in rows}
        return [found.get(k) for k in keys]

    return load


def _grouped(model: type[M], key_field: str, order: tuple[str, ...], **scope: Any
             ) -> Callable[[Sequence[uuid.UUID]], Awaitable[list[list[M]]]]:
    async def load(keys: Sequence[uuid.UUID]) -> list[list[M]]:
        rows = await model.filter(**{f"{key_field}__in": list(set(keys))}, **scope).order_by(
            *order)
        groups: dict[Any, list[M]] = defaultdict(list)
        for r in rows:
            groups[getattr(r, key_field)].append(r)
        return [groups.get(k, []) for k in keys]

    return load


def _attachments(company_id: uuid.UUID, viewer: models.Employee | None
                 ) -> Callable[[Sequence[uuid.UUID]], Awaitable[list[list[models.Document]]]]:
    """The attachments of messages the viewer may see, in one statement: the access rule
    of core.services.documents.visible_query joined in (the company's unrestricted
    documents, restricted ones granted to the viewer; admins see all)."""

    async def load(keys: Sequence[uuid.UUID]) -> list[list[models.Document]]:
        qs = models.Document.filter(messages__id__in=list(set(keys)), company_id=company_id)
        if viewer is None:
            qs = qs.filter(restricted=False)
        elif not viewer.is_admin:
            qs = qs.filter(Q(restricted=False) | Q(grants__employee_id=viewer.id))
        rows = await qs.annotate(attached_to=F("messages__id")).distinct().order_by(
            "created_at", "id")
        found: dict[Any, list[models.Document]] = defaultdict(list)
        for d in rows:
            # The joined id comes back as text on SQLite.
            found[uuid.UUID(str(d.attached_to))].append(d)  # type: ignore[attr-defined]
        return [found.get(k, []) for k in keys]

    return load


class Loaders:
    def __init__(self, company_id: uuid.UUID, *, cache: bool = True,
                 viewer: models.Employee | None = None) -> None:
        def by_id(model: type[M]) -> DataLoader[uuid.UUID, M | None]:
            return DataLoader(load_fn=_by_id(model, company_id), cache=cache)

        self.employee = by_id(models.Employee)
        self.position = by_id(models.Position)
        self.subsidiary = by_id(models.Subsidiary)
        self.candidate = by_id(models.Candidate)
        self.application = by_id(models.Application)
        self.rejection_reason = by_id(models.RejectionReason)
        self.interview = by_id(models.Interview)
        self.message = by_id(models.Message)
        self.bulk_operation = by_id(models.BulkOperation)
        self.document = by_id(models.Document)
        self.email_template = by_id(models.EmailTemplate)
        # Keys are ids of templates already loaded through the company scope.
        self.translations_by_template: DataLoader[
            uuid.UUID, list[models.EmailTemplateTranslation]] = DataLoader(
            load_fn=_grouped(models.EmailTemplateTranslation, "template_id", ("language", "id")),
            cache=cache)
        self.applications_by_candidate: DataLoader[uuid.UUID, list[models.Application]] = (
            DataLoader(load_fn=_grouped(models.Application, "candidate_id",
                                        ("created_at", "id"), company_id=company_id),
                       cache=cache))
        self.interviews_by_application: DataLoader[uuid.UUID, list[models.Interview]] = (
            DataLoader(load_fn=_grouped(models.Interview, "application_id",
                                        ("starts_at", "id"), company_id=company_id),
                       cache=cache))
        # The attachments of a message that the viewer may see.
        self.attachments_by_message: DataLoader[uuid.UUID, list[models.Document]] = DataLoader(
            load_fn=_attachments(company_id, viewer), cache=cache)
        # Keys are ids of messages already loaded through the company scope.
        self.events_by_message: DataLoader[uuid.UUID, list[models.MessageEvent]] = DataLoader(
            load_fn=_grouped(models.MessageEvent, "message_id", ("id",)), cache=cache)
