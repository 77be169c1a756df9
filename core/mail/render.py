"""Template rendering: Jinja2 syntax, a fixed placeholder catalogue, nothing blank.

A template may use only:
  * placeholders from ``PLACEHOLDERS`` (``{{ candidate.first_name }}``),
  * string constants (``{{ '{{' }}`` prints braces),
  * the filters upper, lower, title, capitalize, trim and ``default('text')`` (``d``),
  * ``{% if %}`` / ``{% elif %}`` / ``{% else %}`` on placeholders with ``not``/``and``/``or``.
Anything else (loops, calls, ``[...]``, arithmetic, other names, attribute access outside the
catalogue) is refused with the line of the offending construct.

Safety does not rest on the sandbox alone: the parsed template is checked node by node,
every placeholder reference is replaced by a flat variable holding a plain string, and only
then is it compiled in a ``SandboxedEnvironment`` with no globals, no tests and only the
allowed filters. A placeholder whose value is missing (or blank) is a ``TemplateError``.

The parts: ``template_check`` (the sandbox, the allowed constructs, compiling),
``template_values`` (what each placeholder prints) and ``template_fill`` (the join or the
Jinja run); this module holds the public API on top of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.mail.details import (
    KINDS,
    PLACEHOLDERS,
    CandidateCtx,
    CompanyCtx,
    InterviewCtx,
    PlaceholderSpec,
    PositionCtx,
    RejectionCtx,
    RenderContext,
    SenderCtx,
    interview_details,
    placeholders_for,
    text_to_html,
    with_signature,
)
from core.mail.template_check import (
    PLACEHOLDER_NAMES,
    TemplateError,
    column_of,
    compile_template,
    compiled_or_raise,
)
from core.mail.template_fill import fill
from core.mail.template_values import one_line, placeholder_values

__all__ = [
    "KINDS", "PLACEHOLDERS", "CandidateCtx", "CompanyCtx", "InterviewCtx", "PlaceholderSpec",
    "PositionCtx", "RejectionCtx", "RenderContext", "RenderedText", "SenderCtx",
    "TemplateError", "interview_details", "missing_placeholders", "placeholders_for", "render",
    "text_to_html", "used_placeholders", "validate_template", "with_signature",
]


@dataclass(frozen=True)
class RenderedText:
    subject: str
    body: str


def _order(names: list[str]) -> list[str]:
    known = list(PLACEHOLDER_NAMES)
    unique = set(names)
    return sorted(unique, key=lambda n: (known.index(n) if n in PLACEHOLDER_NAMES
                                         else len(known), n))


# --------------------------------------------------------------------------- public API


def used_placeholders(text: str) -> set[str]:
    """Every name a template refers to (catalogue or not). Raises TemplateError on a syntax
    error."""
    compiled = compile_template(text, "body")
    for error in compiled.errors:
        if error.code == "SYNTAX":
            raise error.copy()
    return set(compiled.refs)


def validate_template(subject: str, body: str, kind: str) -> list[TemplateError]:
    """All problems of a template at save time (empty list = fine): syntax, unsupported
    constructs, names outside the catalogue, names not available for ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown template kind {kind!r}; expected one of {', '.join(KINDS)}")
    errors: list[TemplateError] = []
    if not subject.strip():
        errors.append(TemplateError("the subject must not be empty", field="subject",
                                    code="EMPTY_SUBJECT"))
    allowed = {p.name for p in placeholders_for(kind)}
    for text, field_name in ((subject, "subject"), (body, "body")):
        compiled = compile_template(text, field_name)
        errors.extend(e.copy() for e in compiled.errors)
        reported: set[str] = set()
        for name in compiled.refs:
            if name in PLACEHOLDER_NAMES and name not in allowed and name not in reported:
                reported.add(name)
                line = compiled.first_line.get(name)
                pattern = r"\b" + r"\s*\.\s*".join(re.escape(p) for p in name.split("."))
                errors.append(TemplateError(
                    f"placeholder '{name}' is not available in {kind} templates",
                    field=field_name, line=line,
                    column=column_of(text.replace("\r\n", "\n").split("\n"), line, pattern),
                    code="NOT_ALLOWED_FOR_KIND", placeholders=(name,)))
    return errors


def missing_placeholders(subject: str, body: str, ctx: RenderContext) -> list[str]:
    """Placeholders the template would print that ``ctx`` cannot fill (no interview, no
    position, blank e-mail...), plus names outside the catalogue. Raises TemplateError for
    syntax errors and unsupported constructs."""
    values = placeholder_values(ctx)
    sink: list[str] = []
    for text, field_name in ((subject, "subject"), (body, "body")):
        compiled = compiled_or_raise(text, field_name, allow_unknown=True)
        sink.extend(n for n in compiled.refs if n not in PLACEHOLDER_NAMES)
        fill(compiled, values, sink)
    return _order(sink)


def render(subject: str, body: str, ctx: RenderContext) -> RenderedText:
    """Render subject and body. Raises TemplateError for any invalid template or any
    placeholder without a value; never prints a placeholder blank. The subject comes out
    as one line (whitespace in values collapsed)."""
    compiled_subject = compiled_or_raise(subject, "subject", allow_unknown=False)
    compiled_body = compiled_or_raise(body, "body", allow_unknown=False)
    values = placeholder_values(ctx)
    out: dict[str, str] = {}
    for compiled, field_name in ((compiled_subject, "subject"), (compiled_body, "body")):
        sink: list[str] = []
        out[field_name] = fill(compiled, values, sink)
        if sink:
            names = tuple(_order(sink))
            raise TemplateError(f"no value for {', '.join(names)}", field=field_name,
                                line=compiled.first_line.get(sink[0]), code="MISSING_VALUE",
                                placeholders=names)
    rendered_subject = one_line(out["subject"])
    if not rendered_subject:
        raise TemplateError("the subject is empty", field="subject", code="EMPTY_SUBJECT")
    return RenderedText(subject=rendered_subject, body=out["body"])
