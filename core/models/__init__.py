"""All Tortoise models of the service (one app, label "models")."""

from core.models.candidates import Application, Candidate, Position, RejectionReason
from core.models.companies import ApiToken, Company, Employee, Subsidiary
from core.models.documents import Document, DocumentGrant
from core.models.interviews import Interview
from core.models.messages import (
    BulkOperation,
    InboundEmail,
    InboundReceipt,
    Message,
    MessageEvent,
)
from core.models.templates import EmailTemplate, EmailTemplateTranslation

__all__ = [
    "ApiToken",
    "Application",
    "BulkOperation",
    "Candidate",
    "Company",
    "Document",
    "DocumentGrant",
    "EmailTemplate",
    "EmailTemplateTranslation",
    "Employee",
    "InboundEmail",
    "InboundReceipt",
    "Interview",
    "Message",
    "MessageEvent",
    "Position",
    "RejectionReason",
    "Subsidiary",
]
