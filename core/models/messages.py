"""The outbox: messages, their status history and bulk operations."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from core.models.enums import (
    BulkOperationKind,
    BulkOperationState,
    MessageDirection,
    MessageKind,
    MessageStatus,
)


class BulkOperation(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="bulk_operations", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(BulkOperationKind)
    state = fields.CharEnumField(BulkOperationState, default=BulkOperationState.RUNNING)
    total = fields.IntField(default=0)
    queued = fields.IntField(default=0)
    sent = fields.IntField(default=0)
    failed = fields.IntField(default=0)
    scheduled_at = fields.DatetimeField(null=True)
    # When the last of its messages is expected to go (its server's limits); null = now.
    expected_completion_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    created_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Employee", related_name="bulk_operations", on_delete=fields.RESTRICT
    )
    idempotency_key = fields.CharField(max_length=200, null=True)
    # Rejection parameters, kept so the worker can anonymise after the mail went out.
    rejection_reason: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.RejectionReason", related_name="bulk_operations", null=True,
        on_delete=fields.SET_NULL,
    )
    rejection_note = fields.TextField(null=True)
    anonymize = fields.BooleanField(default=False)
    send_email = fields.BooleanField(default=False)

    company_id: uuid.UUID
    created_by_id: uuid.UUID

    class Meta:
        table = "bulk_operation"
        unique_together = (("company", "idempotency_key"),)


class Message(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Company", related_name="messages", on_delete=fields.CASCADE
    )
    candidate: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Candidate", related_name="messages", on_delete=fields.CASCADE
    )
    application: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Application", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    interview: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Interview", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    bulk_operation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.BulkOperation", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    sender: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Employee", related_name="sent_messages", null=True, on_delete=fields.SET_NULL
    )
    # The subsidiary the mail goes out under (its server is chosen when it is sent);
    # null: the company's.
    subsidiary: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Subsidiary", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharEnumField(MessageKind)
    direction = fields.CharEnumField(MessageDirection, default=MessageDirection.OUTBOUND)
    # Indexed with the company (counts per status) and with next_attempt_at (the sweeper):
    # a status-only index was a third entry to write on every status change.
    status = fields.CharEnumField(MessageStatus)
    from_name = fields.CharField(max_length=300)
    from_address = fields.CharField(max_length=320)
    to_addrs: fields.Field = fields.JSONField(default=list)
    cc_addrs: fields.Field = fields.JSONField(default=list)
    bcc_addrs: fields.Field = fields.JSONField(default=list)
    subject = fields.TextField()
    # As sent: placeholders filled, signature included.
    body = fields.TextField()
    body_html = fields.TextField(null=True)
    # iCalendar object sent with an invitation/update/cancellation, and its METHOD.
    ics = fields.TextField(null=True)
    ics_method = fields.CharField(max_length=16, null=True)
    # RFC 5322 Message-ID without angle brackets; stable across retries.
    rfc_message_id = fields.CharField(max_length=255, db_index=True)
    in_reply_to = fields.CharField(max_length=998, null=True)
    scheduled_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    lease_until = fields.DatetimeField(null=True)
    # When a message held back by its server's limits is expected to go out.
    expected_send_at = fields.DatetimeField(null=True)
    # Set by the worker that claimed a chunk, so one UPDATE can claim many rows.
    claim_token = fields.CharField(max_length=32, null=True, db_index=True)
    error = fields.TextField(null=True)
    idempotency_key = fields.CharField(max_length=200, null=True)
    attachments: fields.ManyToManyRelation = fields.ManyToManyField(
        "models.Document", related_name="messages", through="message_attachment"
    )
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    updated_at = fields.DatetimeField(auto_now=True)

    company_id: uuid.UUID
    candidate_id: uuid.UUID
    application_id: uuid.UUID | None
    interview_id: uuid.UUID | None
    bulk_operation_id: uuid.UUID | None
    subsidiary_id: uuid.UUID | None
    sender_id: uuid.UUID | None

    class Meta:
        table = "message"
        unique_together = (("company", "idempotency_key"),)
        indexes = (("status", "next_attempt_at"), ("candidate_id", "created_at"),
                   ("company_id", "status"))


class MessageEvent(Model):
    id = fields.BigIntField(primary_key=True)
    message: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Message", related_name="events", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(MessageStatus)
    previous_status = fields.CharEnumField(MessageStatus, null=True)
    at = fields.DatetimeField()
    detail = fields.TextField(null=True)

    message_id: uuid.UUID

    class Meta:
        table = "message_event"
        # A message's history (the messages page, anonymisation, ON DELETE CASCADE) without
        # reading every event of every message.
        indexes = (("message_id", "at"),)


class InboundEmail(Model):
    """A copy (size-capped) of every mail the gateway accepted, and what was done with it."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    company: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Company", related_name="inbound_emails", null=True, on_delete=fields.CASCADE
    )
    received_at = fields.DatetimeField(auto_now_add=True)
    mail_from = fields.CharField(max_length=998)
    rcpt_to: fields.Field = fields.JSONField(default=list)
    size = fields.IntField()
    raw_mail = fields.BinaryField()
    truncated = fields.BooleanField(default=False)
    outcome = fields.CharField(max_length=32)
    detail = fields.TextField(null=True)
    message: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Message", related_name="inbound_copies", null=True, on_delete=fields.SET_NULL
    )
    interview: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Interview", related_name="inbound_copies", null=True, on_delete=fields.SET_NULL
    )
    candidate: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Candidate", related_name="inbound_copies", null=True, on_delete=fields.CASCADE
    )

    class Meta:
        table = "inbound_email"


class InboundReceipt(Model):
    """One row per candidate reply received, keyed by a hash of its Message-ID, so the same
    mail arriving twice at once (a sender retrying) is stored once: the database decides."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    candidate: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Candidate", related_name="inbound_receipts", on_delete=fields.CASCADE
    )
    # sha256 of the Message-ID: no readable personal data is kept here.
    key = fields.CharField(max_length=64)
    received_at = fields.DatetimeField(auto_now_add=True)

    candidate_id: uuid.UUID

    class Meta:
        table = "inbound_receipt"
        unique_together = (("candidate", "key"),)
