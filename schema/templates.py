"""Email templates: lookups, editing (with language versions), the placeholder catalogue and
the preview."""

import strawberry

from core import models
from core.mail.details import placeholders_for
from core.models import enums as core_enums
from core.services import preview as previews
from core.services import templates as service
from schema.context import Info
from schema.enums import TemplateKind
from schema.errors import Payload, UserError, payload_of, user_errors
from schema.relay import uuid_of
from schema.types.templates import EmailTemplate, Placeholder
from schema.uploads import ids_or_errors


@strawberry.type
class TemplateQuery:
    @strawberry.field
    async def email_templates(
        self, info: Info, kind: TemplateKind | None = None  # type: ignore[valid-type]
    ) -> list[EmailTemplate]:
        qs = models.EmailTemplate.filter(company_id=info.context.company_id)
        if kind is not None:
            qs = qs.filter(kind=kind)
        return [EmailTemplate.from_row(r) for r in await qs.order_by("name", "id")]

    @strawberry.field(description=(
        "The placeholders a template of this kind may use, as {{ name }} (Jinja2 syntax), in "
        "templates and in text written for one mail alike. A placeholder with no value is "
        "refused at send, unless it has a fallback: {{ interview.video_link | default(\"the "
        "link follows\") }}. Besides default(\"…\"), only upper, lower, title, capitalize, "
        "trim and {% if %} work."))
    def placeholders(
        self, info: Info, kind: TemplateKind  # type: ignore[valid-type]
    ) -> list[Placeholder]:
        info.context.viewer  # noqa: B018 - authenticated callers only
        return [Placeholder.from_spec(p) for p in placeholders_for(str(kind))]


@strawberry.input
class TemplateTranslationInput:
    language: str
    subject: str
    body: str


@strawberry.input
class EmailTemplateInput:
    name: str
    kind: TemplateKind  # type: ignore[valid-type]
    subject: str
    body: str
    attachment_document_ids: list[strawberry.ID] | None = strawberry.field(default_factory=list)
    language: str | None = strawberry.field(default=None, description=(
        "Language (BCP 47) of subject and body. Omitted: \"en\" when creating, unchanged when "
        "updating."))
    translations: list[TemplateTranslationInput] | None = strawberry.field(
        default=None, description=(
            "The other language versions, each checked like subject and body. Omitted on "
            "update: kept; []: removed."))
    is_default: bool | None = strawberry.field(default=None, description=(
        "Make this the company's default template of its kind (the previous one stops "
        "being it). Omitted: false when creating, unchanged when updating."))


@strawberry.type
class EmailTemplatePayload(Payload):
    template: EmailTemplate | None = None


@strawberry.type
class DeletePayload(Payload):
    deleted_id: strawberry.ID | None = None


@strawberry.input
class PreviewMessageInput:
    candidate_id: strawberry.ID | None = None
    application_id: strawberry.ID | None = None
    interview_id: strawberry.ID | None = None
    template_id: strawberry.ID | None = None
    subject: str | None = None
    body: str | None = None
    kind: TemplateKind | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description=(
            "Without templateId: preview the default text of this kind (the company's default "
            "template, else the starter text), as sendInterviewInvitation, rescheduleInterview, "
            "cancelInterview and rejectApplications send it; subject or body replace that part "
            "of it."))


@strawberry.type
class MessagePreview:
    subject: str
    body: str
    from_name: str
    from_address: str
    missing_placeholders: list[str] = strawberry.field(
        description="Placeholders used in the text that this context cannot fill.")
    errors: list[UserError]
    language: str = strawberry.field(description=(
        "The language version used: the candidate's (exact tag, then primary subtag), else "
        "the template's own; for written text, the candidate's language."))


async def _save(info: Info, input: EmailTemplateInput, template_id: strawberry.ID | None,
                creating: bool) -> EmailTemplatePayload:
    info.context.require_admin("create or edit email templates")
    doc_ids, errors = ids_or_errors(input.attachment_document_ids, "Document", "input",
                                    "attachmentDocumentIds")
    return await payload_of(EmailTemplatePayload, lambda: service.save_template(
        employee=info.context.viewer,
        template_id=uuid_of(template_id, "EmailTemplate") if template_id else None,
        name=input.name, kind=core_enums.TemplateKind(input.kind),
        subject=input.subject, body=input.body, attachment_ids=doc_ids, creating=creating,
        language=input.language,
        translations=None if input.translations is None else [
            service.TranslationInput(t.language, t.subject, t.body)
            for t in input.translations],
        is_default=input.is_default),
        lambda row: EmailTemplatePayload(template=EmailTemplate.from_row(row)), errors)


@strawberry.type
class TemplateMutation:
    @strawberry.mutation
    async def create_email_template(self, info: Info,
                                    input: EmailTemplateInput) -> EmailTemplatePayload:
        return await _save(info, input, None, creating=True)

    @strawberry.mutation
    async def update_email_template(self, info: Info, id: strawberry.ID,
                                    input: EmailTemplateInput) -> EmailTemplatePayload:
        return await _save(info, input, id, creating=False)

    @strawberry.mutation
    async def delete_email_template(self, info: Info, id: strawberry.ID) -> DeletePayload:
        info.context.require_admin("delete email templates")
        return await payload_of(DeletePayload, lambda: service.delete_template(
            employee=info.context.viewer, template_id=uuid_of(id, "EmailTemplate")),
            lambda _: DeletePayload(deleted_id=id))


@strawberry.type
class PreviewQuery:
    @strawberry.field(description="Renders what would be sent, without sending or storing anything.")
    async def preview_message(self, info: Info, input: PreviewMessageInput) -> MessagePreview:
        bad: list[str] = []
        ids = {}
        for attr, type_name, name in (("candidate_id", "Candidate", "candidateId"),
                                      ("application_id", "Application", "applicationId"),
                                      ("interview_id", "Interview", "interviewId"),
                                      ("template_id", "EmailTemplate", "templateId")):
            value = getattr(input, attr)
            ids[attr] = uuid_of(value, type_name) if value else None
            if value and ids[attr] is None:
                bad.append(name)
        p = await previews.preview_message(
            employee=info.context.viewer, candidate_id=ids["candidate_id"],
            application_id=ids["application_id"], interview_id=ids["interview_id"],
            template_id=ids["template_id"], use_template=input.template_id is not None,
            subject=input.subject, body=input.body, bad_ids=bad,
            kind=core_enums.TemplateKind(input.kind) if input.kind is not None else None)
        return MessagePreview(subject=p.subject, body=p.body, from_name=p.from_name,
                              from_address=p.from_address, missing_placeholders=p.missing,
                              errors=user_errors(p.errors), language=p.language)
