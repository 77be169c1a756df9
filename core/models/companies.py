"""Tenants, their employees and API tokens."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from core.models.enums import SenderNameMode, SmtpSecurity


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

    class Meta:
        abstract = True

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)


class Company(MailSettings):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    name = fields.CharField(max_length=200)
    feature_email_templates = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "company"


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
