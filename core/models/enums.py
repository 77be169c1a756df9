"""The status and kind vocabularies, shared by the models and the GraphQL schema."""

from __future__ import annotations

from enum import StrEnum


class SenderNameMode(StrEnum):
    EMPLOYEE = "EMPLOYEE"
    COMPANY = "COMPANY"


class SmtpSecurity(StrEnum):
    NONE = "NONE"
    STARTTLS = "STARTTLS"
    TLS = "TLS"


class SmtpProvider(StrEnum):
    """Whose mail server a company sends through; a preset fills its published limits."""

    MICROSOFT_365 = "MICROSOFT_365"
    GOOGLE_WORKSPACE = "GOOGLE_WORKSPACE"
    OTHER = "OTHER"


class ApplicationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    REJECTED = "REJECTED"


class AttendeeResponse(StrEnum):
    NEEDS_ACTION = "NEEDS_ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"


class DocumentAccessLevel(StrEnum):
    VIEW = "VIEW"
    EDIT = "EDIT"


class TemplateKind(StrEnum):
    INTERVIEW_INVITATION = "INTERVIEW_INVITATION"
    MESSAGE = "MESSAGE"
    REJECTION = "REJECTION"


class MessageDirection(StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


class MessageKind(StrEnum):
    INTERVIEW_INVITATION = "INTERVIEW_INVITATION"
    INTERVIEW_UPDATE = "INTERVIEW_UPDATE"
    INTERVIEW_CANCELLATION = "INTERVIEW_CANCELLATION"
    MESSAGE = "MESSAGE"
    BULK = "BULK"
    REJECTION = "REJECTION"
    REPLY = "REPLY"


class MessageStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    BOUNCED = "BOUNCED"
    RECEIVED = "RECEIVED"


class BulkOperationKind(StrEnum):
    EMAIL = "EMAIL"
    REJECTION = "REJECTION"


class BulkOperationState(StrEnum):
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    CANCELLED = "CANCELLED"


class InboundOutcome(StrEnum):
    """What the gateway did with an accepted mail."""

    CALENDAR_REPLY = "CALENDAR_REPLY"
    COUNTER = "COUNTER"
    REPLY = "REPLY"
    BOUNCE = "BOUNCE"
    IGNORED = "IGNORED"
    REJECTED = "REJECTED"
    ERROR = "ERROR"
