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
    kind = fields.CharEnumField(TemplateKind, max_length=22)
    # The language of subject and body (a BCP 47 tag); other languages are translations.
    language = fields.CharField(max_length=35, default="en", db_default="en")
    # The company's template of this kind for mails written without one (one per kind).
    is_default = fields.BooleanField(default=False, db_default=False)
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


class EmailTemplateTranslation(Model):
    """The subject and body of a template in one more language."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    template: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.EmailTemplate", related_name="translations", on_delete=fields.CASCADE
    )
    language = fields.CharField(max_length=35)
    subject = fields.TextField()
    body = fields.TextField()

    template_id: uuid.UUID

    class Meta:
        table = "email_template_translation"
        unique_together = (("template", "language"),)
