"""Interviews and the candidate's calendar answer to their invitation."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from core.models.enums import AttendeeResponse


class Interview(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="interviews", on_delete=fields.CASCADE
    )
    application: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Application", related_name="interviews", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=300)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    timezone = fields.CharField(max_length=64, default="UTC")
    location = fields.CharField(max_length=500, null=True)
    video_link = fields.CharField(max_length=2000, null=True)
    organizer: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Employee", related_name="organized_interviews", on_delete=fields.RESTRICT
    )
    interviewers: fields.ManyToManyRelation = fields.ManyToManyField(
        "models.Employee", related_name="interviews", through="interview_interviewer"
    )
    # iCalendar identity: the UID never changes; SEQUENCE is that of the last invitation sent.
    uid = fields.CharField(max_length=255, unique=True)
    sequence = fields.IntField(default=0)
    invitation_sent = fields.BooleanField(default=False)
    cancelled = fields.BooleanField(default=False)
    candidate_response = fields.CharEnumField(
        AttendeeResponse, default=AttendeeResponse.NEEDS_ACTION
    )
    candidate_responded_at = fields.DatetimeField(null=True)
    candidate_comment = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    company_id: uuid.UUID
    application_id: uuid.UUID
    organizer_id: uuid.UUID

    class Meta:
        table = "interview"
