"""Tenants, their employees and API tokens."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from core.models.enums import SenderNameMode, SmtpProvider, SmtpSecurity


class MailSettings(Model):
    """The email settings a company and each of its subsidiaries have alike: recruiting
    address, sender-name mode and an own SMTP server (core.services.mail_settings reads
    and writes them for both)."""

    sender_name_mode = fields.CharEnumField(SenderNameMode, default=SenderNameMode.EMPLOYEE)
    recruiting_address = fields.CharField(max_length=320, null=True)
    smtp_host = fields.CharField(max_length=255, null=True)
    smtp_port = fields.IntField(null=True)
    smtp_username = fields.CharField(max_length=255, null=True)
    # Fernet token of the password, keyed from the server secret; never returned by the API.
    smtp_password_encrypted = fields.TextField(null=True)
    smtp_security = fields.CharEnumField(SmtpSecurity, null=True)
    # Limits of the server (core.services.pacing); null = none / the preset's.
    smtp_provider = fields.CharEnumField(SmtpProvider, null=True)
    smtp_max_per_minute = fields.IntField(null=True)
    smtp_max_per_day = fields.IntField(null=True)
    smtp_max_connections = fields.IntField(null=True)
    # The server's last failure (login refused, unreachable, throttling …), in words.
    smtp_last_error = fields.TextField(null=True)
    smtp_last_error_at = fields.DatetimeField(null=True)

    class Meta:
        abstract = True

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def settings_key(self) -> str:
        """Whose settings these are, e.g. "company:<id>" or "subsidiary:<id>" (the key of
        its server's pacing in Redis)."""
        return f"{self._meta.db_table}:{self.pk}"

    @property
    def tenant_id(self) -> uuid.UUID:
        """The company these settings belong to (itself, or the subsidiary's company)."""
        raise NotImplementedError


class Company(MailSettings):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    name = fields.CharField(max_length=200)
    feature_email_templates = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "company"

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.id  # type: ignore[return-value]


class Subsidiary(MailSettings):
    """A legal entity of the company that hires under its own name, address and server."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="subsidiaries", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    company_id: uuid.UUID

    class Meta:
        table = "subsidiary"
        unique_together = (("company", "name"),)

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.company_id


class Employee(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="employees", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=320)
    signature = fields.TextField(null=True)
    is_admin = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    company_id: uuid.UUID

    class Meta:
        table = "employee"


class ApiToken(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    employee: fields.ForeignKeyRelation[Employee] = fields.ForeignKeyField(
        "models.Employee", related_name="tokens", on_delete=fields.CASCADE
    )
    # sha256 of the token; the token itself is shown once and never stored.
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked = fields.BooleanField(default=False)

    employee_id: uuid.UUID

    class Meta:
        table = "api_token"
