"""Documents (blobs on disk, metadata here) and who may see a restricted one."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from core.models.enums import DocumentAccessLevel


class Document(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="documents", on_delete=fields.CASCADE
    )
    candidate: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Candidate", related_name="documents", null=True, on_delete=fields.CASCADE
    )
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=255)
    size = fields.BigIntField()
    sha256 = fields.CharField(max_length=64)
    blob_key = fields.CharField(max_length=255)
    uploaded_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Employee", related_name="uploads", null=True, on_delete=fields.SET_NULL
    )
    restricted = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    company_id: uuid.UUID
    candidate_id: uuid.UUID | None
    uploaded_by_id: uuid.UUID | None

    class Meta:
        table = "document"


class DocumentGrant(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    document: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Document", related_name="grants", on_delete=fields.CASCADE
    )
    employee: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Employee", related_name="document_grants", on_delete=fields.CASCADE
    )
    level = fields.CharEnumField(DocumentAccessLevel)

    document_id: uuid.UUID
    employee_id: uuid.UUID

    class Meta:
        table = "document_grant"
        unique_together = (("document", "employee"),)
