"""Positions, candidates, their applications and rejection reasons."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from core.models.enums import ApplicationStatus


class Position(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="positions", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=300)
    # Mails about its applications go out under the subsidiary (address, name, server).
    subsidiary: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Subsidiary", related_name="positions", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    company_id: uuid.UUID
    subsidiary_id: uuid.UUID | None

    class Meta:
        table = "position"


class Candidate(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="candidates", on_delete=fields.CASCADE
    )
    first_name = fields.CharField(max_length=200, null=True)
    last_name = fields.CharField(max_length=200, null=True)
    email = fields.CharField(max_length=320, null=True, db_index=True)
    language = fields.CharField(max_length=35, default="en")
    timezone = fields.CharField(max_length=64, default="UTC")
    anonymized_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    company_id: uuid.UUID

    class Meta:
        table = "candidate"

    @property
    def full_name(self) -> str:
        if self.anonymized_at is not None:
            return "Anonymized candidate"
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (self.email or "")


class RejectionReason(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="rejection_reasons", on_delete=fields.CASCADE
    )
    label = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    company_id: uuid.UUID

    class Meta:
        table = "rejection_reason"


class Application(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="applications", on_delete=fields.CASCADE
    )
    candidate: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Candidate", related_name="applications", on_delete=fields.CASCADE
    )
    position: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Position", related_name="applications", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(ApplicationStatus, default=ApplicationStatus.ACTIVE)
    rejection_reason: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.RejectionReason", related_name="applications", null=True, on_delete=fields.SET_NULL
    )
    rejection_note = fields.TextField(null=True)
    rejected_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    company_id: uuid.UUID
    candidate_id: uuid.UUID
    position_id: uuid.UUID
    rejection_reason_id: uuid.UUID | None

    class Meta:
        table = "application"
