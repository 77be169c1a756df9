"""The one way the text of a candidate mail is made, for previewMessage and every send.

First where the text comes from (a ``Source``): a template of the company (its own language
and its translations), text written for this one mail, or, when nothing is given where that
is allowed, the company's default template of the kind and else the starter file of the
kind. Then ``compose`` picks the version in the candidate's language and renders it. Written
text is rendered like a template, so a placeholder in it is filled (or refused) the same way
whether it is previewed, sent alone, sent to many or sent with an interview.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from core.errors import ErrorCode, FieldError, InputError
from core.mail import render as r
from core.mail.details import DEFAULT_LANGUAGE
from core.mail.languages import normalize_language, pick_language
from core.models import Company, Document, EmailTemplate, EmailTemplateTranslation
from core.models.enums import TemplateKind
from core.services.message_checks import check_body, check_subject
from core.services.templates import load_template

__all__ = ["Composed", "Source", "Version", "compose", "default_source", "preview",
           "resolve_source", "template_source"]


@dataclass(frozen=True)
class Version:
    language: str
    subject: str
    body: str


@dataclass
class Source:
    """Where a mail's text comes from: its versions (own language first) and the documents
    that go with it (a template's attachments)."""

    versions: list[Version]
    documents: list[Document] = field(default_factory=list)
    # Text written for this mail: it has no language of its own, the reader's is reported.
    written: bool = False

    # A bulk send asks for the same few languages thousands of times.
    _picked: dict[str | None, Version] = field(default_factory=dict, repr=False)

    def version_for(self, language: str | None) -> Version:
        picked = self._picked.get(language)
        if picked is None:
            if self.written:
                v = self.versions[0]
                picked = Version(normalize_language(language) or DEFAULT_LANGUAGE, v.subject,
                                 v.body)
            else:
                picked = self.versions[pick_language([v.language for v in self.versions],
                                                     language)]
            self._picked[language] = picked
        return picked


@dataclass(frozen=True)
class Composed:
    subject: str
    body: str  # without the sender's signature
    language: str  # of the version used


async def template_source(tpl: EmailTemplate) -> Source:
    translations = await EmailTemplateTranslation.filter(template_id=tpl.id).order_by("language")
    return Source([Version(tpl.language, tpl.subject, tpl.body),
                   *(Version(t.language, t.subject, t.body) for t in translations)],
                  documents=list(await tpl.attachments.all()))


async def default_source(company: Company, kind: TemplateKind) -> Source:
    """The company's default template of ``kind`` (with the templates add-on), else the
    starter file of ``kind`` in every starter language."""
    from core.services.starter import starter_versions

    if company.feature_email_templates:
        tpl = await EmailTemplate.filter(company_id=company.id, kind=kind,
                                         is_default=True).order_by("-updated_at").first()
        if tpl is not None:
            return await template_source(tpl)
    return Source([Version(s.language, s.subject, s.body) for s in starter_versions(kind)])


def _kind_error(kinds: Collection[TemplateKind], tpl: EmailTemplate,
                path: tuple[str, ...]) -> FieldError:
    wanted = " or ".join(k.value for k in kinds)
    return FieldError(ErrorCode.INVALID_INPUT,
                      f"This needs a {wanted} template, not {tpl.kind.value}.", path)


async def resolve_source(
    *, company: Company, kinds: Collection[TemplateKind], template_id: uuid.UUID | None = None,
    use_template: bool = False, subject: str | None = None, body: str | None = None,
    default_kind: TemplateKind | None = None, path: tuple[str, ...] = ("input",),
) -> Source:
    """The text a mutation was given: ``template_id`` (of one of ``kinds``; ``use_template``
    says an id was given at all), else written ``subject`` and ``body``. With
    ``default_kind``, nothing given means that kind's default, and a subject or a body alone
    replaces that part of the default in every language. Raises InputError."""
    if template_id is not None or use_template:
        tpl = await load_template(company, template_id, (*path, "templateId"))
        if tpl.kind not in kinds:
            raise InputError(_kind_error(kinds, tpl, (*path, "templateId")))
        return await template_source(tpl)
    if default_kind is not None and (subject is None or body is None):
        base = await default_source(company, default_kind)
        errors: list[FieldError] = []
        if subject is not None:
            errors += check_subject(subject, (*path, "subject"))
        if body is not None:
            errors += check_body(body, (*path, "body"))
        if errors:
            raise InputError(errors)
        if subject is None and body is None:
            return base
        return Source([Version(v.language, v.subject if subject is None else subject,
                               v.body if body is None else body) for v in base.versions],
                      documents=base.documents)
    errors = check_subject(subject, (*path, "subject")) + check_body(body, (*path, "body"))
    if errors:
        raise InputError(errors)
    assert subject is not None and body is not None
    return Source([Version(DEFAULT_LANGUAGE, subject, body)], written=True)


def _errors(exc: r.TemplateError, version: Version, source: Source,
            path: tuple[str, ...]) -> list[FieldError]:
    message = str(exc)
    if len(source.versions) > 1:
        message = f"{version.language} version: {message}"
    return [FieldError(ErrorCode.TEMPLATE_ERROR, message, (*path, exc.field))]


def compose(source: Source, ctx: r.RenderContext, path: tuple[str, ...] = ("input",)) -> Composed:
    """The version in the candidate's language, rendered. InputError (TEMPLATE_ERROR, naming
    the language when there are several) for anything that cannot be filled."""
    version = source.version_for(ctx.candidate.language)
    try:
        out = r.render(version.subject, version.body, ctx)
    except r.TemplateError as exc:
        raise InputError(_errors(exc, version, source, path)) from None
    return Composed(out.subject, out.body, version.language)


def preview(source: Source, ctx: r.RenderContext, path: tuple[str, ...] = ("input",)
            ) -> tuple[Composed | None, str, list[str], list[FieldError]]:
    """What ``compose`` gives, the language of the version used and the placeholders the
    context cannot fill; on a problem (None, language, missing, errors) instead of raising."""
    version = source.version_for(ctx.candidate.language)
    try:
        missing = r.missing_placeholders(version.subject, version.body, ctx)
    except r.TemplateError as exc:
        return None, version.language, [], _errors(exc, version, source, path)
    try:
        return compose(source, ctx, path), version.language, missing, []
    except InputError as exc:
        return None, version.language, missing, exc.errors
