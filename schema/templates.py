"""Email templates: lookups and the placeholder catalogue (editing comes with its service)."""

import strawberry

from core import models
from core.mail.details import placeholders_for
from schema.context import Info
from schema.enums import TemplateKind
from schema.types.templates import EmailTemplate, Placeholder


@strawberry.type
class TemplateQuery:
    @strawberry.field
    async def email_templates(
        self, info: Info, kind: TemplateKind | None = None  # type: ignore[valid-type]
    ) -> list[EmailTemplate]:
        qs = models.EmailTemplate.filter(company_id=info.context.company_id)
        if kind is not None:
            qs = qs.filter(kind=kind)
        return [EmailTemplate.from_row(r) for r in await qs.order_by("name", "id")]

    @strawberry.field
    def placeholders(
        self, info: Info, kind: TemplateKind  # type: ignore[valid-type]
    ) -> list[Placeholder]:
        info.context.viewer  # noqa: B018 - authenticated callers only
        return [Placeholder.from_spec(p) for p in placeholders_for(str(kind))]
