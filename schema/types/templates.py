"""Email templates and the placeholder catalogue."""


import strawberry

from core import models
from core.mail.details import PlaceholderSpec
from schema.context import Info
from schema.enums import TemplateKind
from schema.relay import FromRow, Node, loaded_node, registered
from schema.types.documents import Document, load_documents


@strawberry.type(description="The subject and body of a template in one more language.")
class TemplateTranslation:
    language: str = strawberry.field(description="BCP 47 tag, e.g. nl or nl-BE.")
    subject: str
    body: str


@registered
@strawberry.type
class EmailTemplate(Node, FromRow):
    name: str
    kind: TemplateKind  # type: ignore[valid-type]
    subject: str
    body: str
    language: str = strawberry.field(description=(
        "Language (BCP 47) of subject and body: the version a candidate reads when no "
        "translation matches their language."))
    is_default: bool = strawberry.field(description=(
        "Used for this kind when a mail is sent without a template or text (interview "
        "invitations, updates and cancellations, rejection emails). One per kind."))
    row: strawberry.Private[models.EmailTemplate]

    @strawberry.field(description=(
        "The other language versions. A candidate reads the version of their language: the "
        "exact tag, then its primary subtag (nl-BE reads nl), else the template's own."))
    async def translations(self, info: Info) -> list[TemplateTranslation]:
        rows = await info.context.loaders.translations_by_template.load(self.row.id)
        return [TemplateTranslation(language=t.language, subject=t.subject, body=t.body)
                for t in rows]

    @strawberry.field(description="Documents attached to every message made from this template.")
    async def attachments(self, info: Info) -> list[Document]:
        return await load_documents(info, models.Document.filter(templates__id=self.row.id))


@strawberry.type
class Placeholder:
    name: str = strawberry.field(description="As written in a template, e.g. candidate.first_name.")
    description: str
    example: str

    @classmethod
    def from_spec(cls, spec: PlaceholderSpec) -> "Placeholder":
        return cls(name=spec.name, description=spec.description, example=spec.example)


load_email_template = loaded_node("EmailTemplate", "email_template")
