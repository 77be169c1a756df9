"""Company, its employees and positions."""

import uuid
from datetime import datetime

import strawberry

from core import models
from core.models.companies import MailSettings
from schema.context import Info
from schema.enums import SenderNameMode, SmtpProvider, SmtpSecurity
from schema.relay import FromRow, Node, loaded_node, node_resolver, registered


@strawberry.type
class CompanyFeatures:
    email_templates: bool = strawberry.field(description=(
        "Email templates are an add-on; without it template IDs are refused with "
        "FEATURE_NOT_ENABLED."))


@strawberry.type
class CompanyEmailSettings:
    sender_name_mode: SenderNameMode  # type: ignore[valid-type]
    recruiting_address: str | None = strawberry.field(description=(
        "The company's recruiting address used as From; null means the platform default "
        "sender."))
    smtp_configured: bool = strawberry.field(description=(
        "True when the company sends through its own SMTP server. The password is never "
        "readable."))
    smtp_host: str | None
    smtp_port: int | None
    smtp_username: str | None
    smtp_security: SmtpSecurity | None  # type: ignore[valid-type]
    smtp_provider: SmtpProvider | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The provider whose preset filled the limits, if any.")
    smtp_max_per_minute: int | None = strawberry.field(default=None, description=(
        "Mails a minute the server takes; sent evenly spread (60 is one a second). "
        "Null: no limit."))
    smtp_max_per_day: int | None = strawberry.field(default=None, description=(
        "Recipients (To, Cc and Bcc) the server takes in a sliding 24 hours; the rest wait "
        "for the next window. Null: no limit."))
    smtp_max_connections: int | None = strawberry.field(default=None, description=(
        "Connections open to the server at once, across all workers. Null: the platform's "
        "default."))
    last_error: str | None = strawberry.field(default=None, description=(
        "The server's last failure (login refused, unreachable, certificate, asked to slow "
        "down …), in words; cleared when the server settings change."))
    last_error_at: datetime | None = None


@strawberry.type
class Company(Node, FromRow):
    name: str
    row: strawberry.Private[models.Company]

    @strawberry.field
    def features(self) -> CompanyFeatures:
        return CompanyFeatures(email_templates=self.row.feature_email_templates)

    @strawberry.field
    def email_settings(self) -> CompanyEmailSettings:
        return email_settings_of(self.row)


def email_settings_of(r: MailSettings) -> CompanyEmailSettings:
    """The settings as shown, alike for a company and a subsidiary (no password)."""
    return CompanyEmailSettings(
        sender_name_mode=r.sender_name_mode, recruiting_address=r.recruiting_address,
        smtp_configured=r.smtp_configured, smtp_host=r.smtp_host, smtp_port=r.smtp_port,
        smtp_username=r.smtp_username, smtp_security=r.smtp_security,
        smtp_provider=r.smtp_provider, smtp_max_per_minute=r.smtp_max_per_minute,
        smtp_max_per_day=r.smtp_max_per_day, smtp_max_connections=r.smtp_max_connections,
        last_error=r.smtp_last_error, last_error_at=r.smtp_last_error_at,
    )


@registered
@strawberry.type(description=(
    "A legal entity of the company hiring under its own name: mails about applications to "
    "its positions go out with its recruiting address, its name (sender-name mode COMPANY) "
    "and through its SMTP server; where it has none of these, the company's are used."))
class Subsidiary(Node, FromRow):
    name: str
    row: strawberry.Private[models.Subsidiary]

    @strawberry.field(description=(
        "Its own settings. A null recruitingAddress means the company's address is used; "
        "no smtpHost means the company's server is used."))
    def email_settings(self) -> CompanyEmailSettings:
        return email_settings_of(self.row)

    @strawberry.field
    async def positions(self, info: Info) -> list["Position"]:
        rows = await models.Position.filter(company_id=info.context.company_id,
                                            subsidiary_id=self.row.id).order_by("title", "id")
        return [Position.from_row(r) for r in rows]


@registered
@strawberry.type
class Employee(Node, FromRow):
    name: str
    email: str
    signature: str | None = strawberry.field(
        description="Appended under every message this employee sends.")
    row: strawberry.Private[models.Employee]


@registered
@strawberry.type
class Position(Node, FromRow):
    title: str
    row: strawberry.Private[models.Position]

    @strawberry.field(description=(
        "The subsidiary its mails go out under; null: the company's."))
    async def subsidiary(self, info: Info) -> Subsidiary | None:
        return await load_subsidiary(info, self.row.subsidiary_id)


load_employee = loaded_node("Employee", "employee")
load_position = loaded_node("Position", "position")
load_subsidiary = loaded_node("Subsidiary", "subsidiary")


@node_resolver("Company")
async def _company_node(info: Info, pk: uuid.UUID) -> Company | None:
    company = info.context.tenant
    return Company.from_row(company) if company.id == pk else None
