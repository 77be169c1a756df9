"""The domain vocabularies (core.models.enums, core.errors) as GraphQL enums."""

import strawberry

from core.errors import ErrorCode as _ErrorCode
from core.models import enums as e

ErrorCode = strawberry.enum(_ErrorCode, name="ErrorCode")
SenderNameMode = strawberry.enum(e.SenderNameMode, name="SenderNameMode")
SmtpSecurity = strawberry.enum(e.SmtpSecurity, name="SmtpSecurity")
SmtpProvider = strawberry.enum(e.SmtpProvider, name="SmtpProvider", description=(
    "Whose mail server the company sends through; a preset fills the server's limits with "
    "the provider's published figures."))
ApplicationStatus = strawberry.enum(e.ApplicationStatus, name="ApplicationStatus")
AttendeeResponse = strawberry.enum(e.AttendeeResponse, name="AttendeeResponse")
DocumentAccessLevel = strawberry.enum(e.DocumentAccessLevel, name="DocumentAccessLevel")
TemplateKind = strawberry.enum(e.TemplateKind, name="TemplateKind")
MessageDirection = strawberry.enum(e.MessageDirection, name="MessageDirection")
MessageKind = strawberry.enum(e.MessageKind, name="MessageKind")
MessageStatus = strawberry.enum(e.MessageStatus, name="MessageStatus")
BulkOperationKind = strawberry.enum(e.BulkOperationKind, name="BulkOperationKind")
BulkOperationState = strawberry.enum(e.BulkOperationState, name="BulkOperationState")
