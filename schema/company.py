"""The viewer, the company and its settings, positions and rejection reasons."""

import copy
import re
from enum import Enum
from typing import Any, TypeVar

import strawberry
from strawberry import UNSET

from core import models
from core.errors import ErrorCode, FieldError
from core.mail.addresses import normalize_address
from core.mail.smtp_connect import target_for
from core.models.companies import MailSettings
from core.models.enums import SmtpProvider as CoreSmtpProvider
from core.security import encrypt_secret
from core.services import pacing, smtp_check, smtp_guard
from core.services.mail_settings import load_subsidiary
from core.settings import get_settings
from schema.context import Info
from schema.enums import SenderNameMode, SmtpProvider, SmtpSecurity
from schema.errors import Payload, field_error, not_found, user_errors
from schema.relay import uuid_of
from schema.types.candidates import RejectionReason
from schema.types.company import Company, Employee, Position

MAX_TITLE = 300
MAX_LABEL = 200
MAX_SIGNATURE = 10_000
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(value: str, max_len: int, what: str, *path: str) -> tuple[str, list[FieldError]]:
    """Trimmed single-line text; required, at most max_len characters."""
    text = value.strip()
    if not text:
        return text, [field_error(ErrorCode.INVALID_INPUT, f"{what} is required.", *path)]
    if _CONTROL.search(text):
        return text, [field_error(ErrorCode.INVALID_INPUT, f"{what} must be one line.", *path)]
    if len(text) > max_len:
        return text, [field_error(ErrorCode.TOO_LARGE,
                                  f"{what} is longer than {max_len} characters.", *path)]
    return text, []


@strawberry.type
class PositionPayload(Payload):
    position: Position | None = None


@strawberry.type
class RejectionReasonPayload(Payload):
    rejection_reason: RejectionReason | None = None


@strawberry.type
class EmployeePayload(Payload):
    employee: Employee | None = None


@strawberry.type
class CompanyPayload(Payload):
    company: Company | None = None


@strawberry.input
class CreatePositionInput:
    title: str
    subsidiary_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "The subsidiary the position belongs to: mails about its applications go out under "
        "it. Null: the company's."))


@strawberry.input
class CompanyEmailSettingsInput:
    """Omitted fields stay as they are; null clears."""

    sender_name_mode: SenderNameMode | None = UNSET  # type: ignore[valid-type]
    recruiting_address: str | None = UNSET
    smtp_host: str | None = UNSET
    smtp_port: int | None = UNSET
    smtp_username: str | None = UNSET
    smtp_password: str | None = strawberry.field(default=UNSET, description="Write-only.")
    smtp_security: SmtpSecurity | None = UNSET  # type: ignore[valid-type]
    smtp_provider: SmtpProvider | None = strawberry.field(  # type: ignore[valid-type]
        default=UNSET, description=(
            "A preset: fills smtpMaxPerMinute, smtpMaxPerDay and smtpMaxConnections with the "
            "provider's published limits, except those given in the same input."))
    smtp_max_per_minute: int | None = strawberry.field(
        default=UNSET, description="1 or more; null: no limit.")
    smtp_max_per_day: int | None = strawberry.field(
        default=UNSET, description="Recipients in a sliding 24 hours, 1 or more; null: no limit.")
    smtp_max_connections: int | None = strawberry.field(
        default=UNSET, description="1 or more; null: the platform's default.")


@strawberry.enum(name="SmtpTestStepName")
class SmtpTestStepName(Enum):
    CONNECT = "CONNECT"
    TLS = "TLS"
    AUTH = "AUTH"
    MAIL_FROM = "MAIL_FROM"


@strawberry.enum(name="SmtpTestStepStatus")
class SmtpTestStepStatus(Enum):
    OK = "OK"
    FAILED = "FAILED"


@strawberry.type(description=(
    "One step of testCompanySmtp. Only the steps the settings need are listed (TLS with "
    "security TLS or STARTTLS, AUTH with a user name), and none after the first failure."))
class SmtpTestStep:
    step: SmtpTestStepName
    ok: bool
    status: SmtpTestStepStatus
    message: str = strawberry.field(description="What happened, or why it failed, in words.")


@strawberry.type
class SmtpTestPayload(Payload):
    ok: bool = strawberry.field(description="Every step that was needed succeeded.")
    steps: list[SmtpTestStep] = strawberry.field(default_factory=list)


@strawberry.type
class CompanyQuery:
    @strawberry.field
    def viewer(self, info: Info) -> Employee:
        return Employee.from_row(info.context.viewer)

    @strawberry.field
    def company(self, info: Info) -> Company:
        return Company.from_row(info.context.tenant)

    @strawberry.field
    async def positions(self, info: Info) -> list[Position]:
        rows = await models.Position.filter(company_id=info.context.company_id).order_by(
            "title", "id")
        return [Position.from_row(r) for r in rows]

    @strawberry.field
    async def rejection_reasons(self, info: Info) -> list[RejectionReason]:
        rows = await models.RejectionReason.filter(company_id=info.context.company_id).order_by(
            "label", "id")
        return [RejectionReason.from_row(r) for r in rows]


def _settings_changes(data: CompanyEmailSettingsInput) -> tuple[dict[str, Any], list[FieldError]]:
    p = "input"
    changes: dict[str, Any] = {}
    errors: list[FieldError] = []
    if data.sender_name_mode is not UNSET:
        if data.sender_name_mode is None:
            errors.append(field_error(ErrorCode.INVALID_INPUT, "senderNameMode cannot be null.",
                                      p, "senderNameMode"))
        else:
            changes["sender_name_mode"] = data.sender_name_mode
    if data.recruiting_address is not UNSET:
        raw = (data.recruiting_address or "").strip()
        addr = normalize_address(raw) if raw else None
        if raw and addr is None:
            errors.append(field_error(ErrorCode.INVALID_EMAIL,
                                      f"{raw!r} is not a valid email address.",
                                      p, "recruitingAddress"))
        changes["recruiting_address"] = addr
    if data.smtp_host is not UNSET:
        host = (data.smtp_host or "").strip()
        if host and not _HOSTNAME.match(host):
            errors.append(field_error(ErrorCode.INVALID_INPUT, "Not a host name.",
                                      p, "smtpHost"))
        changes["smtp_host"] = host or None
    if data.smtp_port is not UNSET:
        if data.smtp_port is not None and not 1 <= data.smtp_port <= 65535:
            errors.append(field_error(ErrorCode.INVALID_INPUT, "A port is 1 to 65535.",
                                      p, "smtpPort"))
        changes["smtp_port"] = data.smtp_port
    if data.smtp_username is not UNSET:
        user = data.smtp_username or None
        if user is not None and (_CONTROL.search(user) or len(user) > 255):
            errors.append(field_error(ErrorCode.INVALID_INPUT,
                                      "The user name must be one line of at most 255 characters.",
                                      p, "smtpUsername"))
        changes["smtp_username"] = user
    if data.smtp_password is not UNSET:
        pw = data.smtp_password
        if pw is not None and (_CONTROL.search(pw) or len(pw) > 1000):
            errors.append(field_error(ErrorCode.INVALID_INPUT,
                                      "The password must be one line of at most 1000 characters.",
                                      p, "smtpPassword"))
        changes["smtp_password_encrypted"] = encrypt_secret(pw) if pw else None
    if data.smtp_security is not UNSET:
        changes["smtp_security"] = data.smtp_security
    limits = {"smtp_max_per_minute": (data.smtp_max_per_minute, "smtpMaxPerMinute", 100_000),
              "smtp_max_per_day": (data.smtp_max_per_day, "smtpMaxPerDay", 10_000_000),
              "smtp_max_connections": (data.smtp_max_connections, "smtpMaxConnections", 100)}
    if data.smtp_provider is not UNSET:
        changes["smtp_provider"] = data.smtp_provider
        if data.smtp_provider is not None:
            preset = pacing.PRESETS[CoreSmtpProvider(data.smtp_provider)]
            changes.update(smtp_max_per_minute=preset.per_minute,
                           smtp_max_per_day=preset.per_day,
                           smtp_max_connections=preset.connections)
    for column, (value, name, top) in limits.items():
        if value is UNSET:
            continue
        if value is not None and not 1 <= value <= top:
            errors.append(field_error(ErrorCode.INVALID_INPUT,
                                      f"{name} is 1 to {top:,}, or null for no limit.", p, name))
        changes[column] = value
    return changes, errors


SERVER_FIELDS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username",
                 "smtp_password_encrypted")


S = TypeVar("S", bound=MailSettings)


def _merged(company: S, changes: dict[str, Any]) -> S:
    """The company (or subsidiary) as it would be with `changes` (not saved)."""
    row = copy.copy(company)
    for k, v in changes.items():
        setattr(row, k, v)
    return row


async def _guard_errors(merged: MailSettings) -> list[FieldError]:
    """The network guard on the server the settings point to (unresolvable names pass:
    they are checked again before every connection)."""
    if not merged.smtp_host:
        return []
    target = target_for(merged)
    try:
        await smtp_guard.check(target.host, target.port)
    except smtp_guard.Refused as exc:
        return [field_error(ErrorCode.INVALID_INPUT, str(exc), "input", exc.field)]
    except smtp_guard.Unresolved:
        return []
    return []


async def save_email_settings(owner: MailSettings, changes: dict[str, Any]) -> list[FieldError]:
    """Store checked changes of the email settings of a company or a subsidiary (one path
    for both): a changed server is checked by the network guard first, its last error is
    cleared and its pacing starts afresh. Errors mean nothing was written. The caller
    catches IntegrityError for its own columns (a subsidiary's name)."""
    server_changed = any(k in changes and changes[k] != getattr(owner, k)
                         for k in SERVER_FIELDS)
    if server_changed:
        errors = await _guard_errors(_merged(owner, changes))
        if errors:
            return errors
        changes = {**changes, "smtp_last_error": None, "smtp_last_error_at": None}
    if changes:
        await type(owner).filter(id=owner.pk).update(**changes)
        await owner.refresh_from_db()
    if server_changed:
        await pacing.forget(pacing.owner_key(owner))
    return []


@strawberry.type
class CompanyMutation:
    @strawberry.mutation
    async def create_position(self, info: Info, input: CreatePositionInput) -> PositionPayload:
        title, errors = one_line(input.title, MAX_TITLE, "A title", "input", "title")
        subsidiary = None
        if input.subsidiary_id is not None:
            subsidiary = await load_subsidiary(info.context.company_id,
                                               uuid_of(input.subsidiary_id, "Subsidiary"))
            if subsidiary is None:
                errors.append(not_found("subsidiary", "input", "subsidiaryId"))
        if errors:
            return PositionPayload(errors=user_errors(errors))
        row = await models.Position.create(company_id=info.context.company_id, title=title,
                                           subsidiary_id=subsidiary.id if subsidiary else None)
        return PositionPayload(position=Position.from_row(row))

    @strawberry.mutation
    async def create_rejection_reason(self, info: Info, label: str) -> RejectionReasonPayload:
        info.context.require_admin("create rejection reasons")
        text, errors = one_line(label, MAX_LABEL, "A label", "label")
        if errors:
            return RejectionReasonPayload(errors=user_errors(errors))
        row = await models.RejectionReason.create(company_id=info.context.company_id,
                                                  label=text)
        return RejectionReasonPayload(rejection_reason=RejectionReason.from_row(row))

    @strawberry.mutation
    async def update_my_signature(self, info: Info, signature: str | None) -> EmployeePayload:
        viewer = info.context.viewer
        text = (signature or "").strip() or None
        if text is not None and len(text) > MAX_SIGNATURE:
            return EmployeePayload(errors=user_errors([field_error(
                ErrorCode.TOO_LARGE, f"The signature is longer than {MAX_SIGNATURE} characters.",
                "signature")]))
        await models.Employee.filter(id=viewer.id).update(signature=text)
        viewer.signature = text  # type: ignore[assignment]
        return EmployeePayload(employee=Employee.from_row(viewer))

    @strawberry.mutation
    async def update_company_email_settings(
        self, info: Info, input: CompanyEmailSettingsInput
    ) -> CompanyPayload:
        info.context.require_admin("change the email settings")
        changes, errors = _settings_changes(input)
        company = info.context.tenant
        if not errors:
            errors = await save_email_settings(company, changes)
        if errors:
            return CompanyPayload(errors=user_errors(errors))
        return CompanyPayload(company=Company.from_row(company))

    @strawberry.mutation(description=(
        "Try the company's mail server, with the given settings over the stored ones: "
        "connect, TLS, login and MAIL FROM the recruiting address; no mail is sent. "
        "With subsidiaryId, the subsidiary's server and address the same way. Admins only."))
    async def test_company_smtp(
        self, info: Info, input: CompanyEmailSettingsInput | None = None,
        subsidiary_id: strawberry.ID | None = None,
    ) -> SmtpTestPayload:
        info.context.require_admin("test the email settings")
        company = info.context.tenant
        subsidiary = None
        if subsidiary_id is not None:
            subsidiary = await load_subsidiary(company.id, uuid_of(subsidiary_id, "Subsidiary"))
            if subsidiary is None:
                return SmtpTestPayload(ok=False, errors=user_errors([
                    not_found("subsidiary", "subsidiaryId")]))
        changes, errors = _settings_changes(input) if input is not None else ({}, [])
        if errors:
            return SmtpTestPayload(ok=False, errors=user_errors(errors))
        merged: MailSettings = _merged(subsidiary or company, changes)
        if not merged.smtp_host:
            return SmtpTestPayload(ok=False, errors=user_errors([field_error(
                ErrorCode.INVALID_INPUT,
                "No SMTP server is set: the subsidiary sends through the company's server."
                if subsidiary else "No SMTP server is set: the company sends through the "
                "platform.", "input", "smtpHost")]))
        errors = await _guard_errors(merged)
        if errors:
            return SmtpTestPayload(ok=False, errors=user_errors(errors))
        sender = (merged.recruiting_address or company.recruiting_address
                  or get_settings().default_from_address)
        steps = await smtp_check.check(target_for(merged), sender)
        return SmtpTestPayload(
            ok=all(st.status != smtp_check.StepStatus.FAILED for st in steps),
            steps=[SmtpTestStep(step=SmtpTestStepName(st.step.value),
                                ok=st.status == smtp_check.StepStatus.OK,
                                status=SmtpTestStepStatus(st.status.value),
                                message=st.message) for st in steps])
