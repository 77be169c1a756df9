"""Who a mail goes out under: the company or one of its subsidiaries.

A company and each subsidiary own the same email settings (core.models.MailSettings:
recruiting address, sender-name mode, an own SMTP server). Every mail about an
application goes out under the subsidiary of the application's position when it has one,
under the company otherwise; a mail without an application under the company. The
subsidiary's settings are used where it has them and the company's where it has not:

- From address: the subsidiary's recruiting address, else the company's, else the
  platform default sender;
- From name: with sender-name mode COMPANY (or without an employee) the name of the
  owner, else the employee's name (the mode is the owner's);
- server: the subsidiary's SMTP server when it has one, else the company's (or the
  platform relay when neither has one). It is looked up when the mail is sent, so a
  corrected password takes effect for mails still waiting.

This module is the one place that decides it; messaging, interviews, bulk, preview and
the worker all ask here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.models import Application, Company, Employee, Position, Subsidiary
from core.models.companies import MailSettings
from core.models.enums import SenderNameMode
from core.settings import get_settings


@dataclass(frozen=True, slots=True)
class MailOwner:
    """The company and, when the mail concerns a position of one, the subsidiary."""

    company: Company
    subsidiary: Subsidiary | None = None

    @property
    def settings(self) -> MailSettings:
        return self.subsidiary or self.company

    @property
    def name(self) -> str:
        return (self.subsidiary or self.company).name

    @property
    def address(self) -> str:
        return (
            (self.subsidiary.recruiting_address if self.subsidiary else None)
            or self.company.recruiting_address
            or get_settings().default_from_address
        )

    def identity(self, sender: Employee | None) -> tuple[str, str]:
        """(From name, From address) per the owner's sender-name mode."""
        if self.settings.sender_name_mode == SenderNameMode.COMPANY or sender is None:
            return self.name, self.address
        return sender.name, self.address

    @property
    def server(self) -> MailSettings:
        """Whose SMTP settings the mail is sent with (no host there: the platform relay)."""
        if self.subsidiary is not None and self.subsidiary.smtp_host:
            return self.subsidiary
        return self.company


def server_owner(company: Company, subsidiary: Subsidiary | None) -> MailSettings:
    return MailOwner(company, subsidiary).server


async def subsidiary_of_position(position: Position | None) -> Subsidiary | None:
    if position is None or position.subsidiary_id is None:
        return None
    return await Subsidiary.get_or_none(id=position.subsidiary_id,
                                        company_id=position.company_id)


async def owner_for_application(company: Company,
                                application_id: uuid.UUID | None) -> MailOwner:
    """The owner of mails about the application (the company's without one)."""
    if application_id is None:
        return MailOwner(company)
    sub_ids = await Application.filter(
        id=application_id, company_id=company.id).values_list(
        "position__subsidiary_id", flat=True)
    sub_id = sub_ids[0] if sub_ids else None
    if sub_id is None:
        return MailOwner(company)
    return MailOwner(company, await Subsidiary.get_or_none(id=sub_id, company_id=company.id))


async def subsidiaries_by_id(ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Subsidiary]:
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return {}
    return {s.id: s for s in await Subsidiary.filter(id__in=wanted)}


async def load_subsidiary(company_id: uuid.UUID,
                          subsidiary_id: uuid.UUID | None) -> Subsidiary | None:
    if subsidiary_id is None:
        return None
    return await Subsidiary.get_or_none(id=subsidiary_id, company_id=company_id)


async def name_taken(company_id: uuid.UUID, name: str,
                     except_id: uuid.UUID | None = None) -> bool:
    """Names of a company's subsidiaries are unique, ignoring case."""
    rows: Sequence[Any] = await Subsidiary.filter(company_id=company_id).values_list(
        "id", "name")
    return any(n.casefold() == name.casefold() and i != except_id for i, n in rows)
