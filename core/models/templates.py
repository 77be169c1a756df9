"""Email templates (a company add-on)."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from core.models.enums import TemplateKind


class EmailTemplate(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="email_templates", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    kind = fields.CharEnumField(TemplateKind)
    subject = fields.TextField()
    body = fields.TextField()
    attachments: fields.ManyToManyRelation = fields.ManyToManyField(
        "models.Document", related_name="templates", through="email_template_attachment"
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    company_id: uuid.UUID

    class Meta:
        table = "email_template"
