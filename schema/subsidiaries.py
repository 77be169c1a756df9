"""Subsidiaries: a company's legal entities, each with the company's kind of email settings."""

from __future__ import annotations

import strawberry
from strawberry import UNSET
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import models
from core.errors import ErrorCode, FieldError
from core.services import mail_settings
from schema.company import (
    MAX_LABEL,
    CompanyEmailSettingsInput,
    _guard_errors,
    _settings_changes,
    one_line,
    save_email_settings,
)
from schema.context import Info
from schema.errors import Payload, field_error, forbidden, not_found, user_errors
from schema.relay import uuid_of
from schema.types.company import Subsidiary


@strawberry.input(description=(
    "A subsidiary's name and its email settings (the fields of CompanyEmailSettingsInput). "
    "On update, omitted fields stay as they are and null clears; a name is required to "
    "create one."))
class SubsidiaryInput(CompanyEmailSettingsInput):
    name: str | None = strawberry.field(default=UNSET, description=(
        "Unique among the company's subsidiaries (ignoring case)."))


@strawberry.type
class SubsidiaryPayload(Payload):
    subsidiary: Subsidiary | None = None


@strawberry.type
class SubsidiaryQuery:
    @strawberry.field(description="The company's subsidiaries, by name.")
    async def subsidiaries(self, info: Info) -> list[Subsidiary]:
        rows = await models.Subsidiary.filter(company_id=info.context.company_id).order_by(
            "name", "id")
        return [Subsidiary.from_row(r) for r in rows]


async def _name(info: Info, input: SubsidiaryInput, current: models.Subsidiary | None
                ) -> tuple[str | None, list[FieldError]]:
    """The checked new name; None when it stays (update without a name)."""
    if input.name is UNSET or (input.name is None and current is not None):
        if current is None:
            return None, [field_error(ErrorCode.INVALID_INPUT, "A name is required.",
                                      "input", "name")]
        return None, []
    name, errors = one_line(input.name or "", MAX_LABEL, "A name", "input", "name")
    if not errors and await mail_settings.name_taken(info.context.company_id, name,
                                                     current.id if current else None):
        errors.append(_name_taken(name))
    return name, errors


def _name_taken(name: str) -> FieldError:
    return field_error(ErrorCode.INVALID_INPUT, f"A subsidiary named {name!r} exists already.",
                       "input", "name")


def _require_admin(info: Info) -> None:
    if not info.context.viewer.is_admin:
        raise forbidden("Only a company admin may manage subsidiaries.")


@strawberry.type
class SubsidiaryMutation:
    @strawberry.mutation(description="Admins only.")
    async def create_subsidiary(self, info: Info, input: SubsidiaryInput) -> SubsidiaryPayload:
        _require_admin(info)
        name, errors = await _name(info, input, None)
        changes, more = _settings_changes(input)
        errors += more
        if errors:
            return SubsidiaryPayload(errors=user_errors(errors))
        # Without a mode of its own it starts with the company's.
        changes.setdefault("sender_name_mode", info.context.tenant.sender_name_mode)
        row = models.Subsidiary(company_id=info.context.company_id, name=name, **changes)
        # Its server passes the same network guard as the company's.
        errors = await _guard_errors(row)
        if errors:
            return SubsidiaryPayload(errors=user_errors(errors))
        try:
            async with in_transaction():
                await row.save()
        except IntegrityError:
            return SubsidiaryPayload(errors=user_errors([_name_taken(name or "")]))
        return SubsidiaryPayload(subsidiary=Subsidiary.from_row(row))

    @strawberry.mutation(description="Admins only. Omitted fields stay as they are.")
    async def update_subsidiary(self, info: Info, id: strawberry.ID,
                                input: SubsidiaryInput) -> SubsidiaryPayload:
        _require_admin(info)
        pk = uuid_of(id, "Subsidiary")
        row = await mail_settings.load_subsidiary(info.context.company_id, pk)
        if row is None:
            return SubsidiaryPayload(errors=user_errors([not_found("subsidiary", "id")]))
        name, errors = await _name(info, input, row)
        changes, more = _settings_changes(input)
        errors += more
        if errors:
            return SubsidiaryPayload(errors=user_errors(errors))
        if name is not None:
            changes["name"] = name
        try:
            async with in_transaction():
                # The company's path: network guard, last error cleared, pacing afresh.
                errors = await save_email_settings(row, changes)
        except IntegrityError:
            return SubsidiaryPayload(errors=user_errors([_name_taken(name or "")]))
        if errors:
            return SubsidiaryPayload(errors=user_errors(errors))
        return SubsidiaryPayload(subsidiary=Subsidiary.from_row(row))
