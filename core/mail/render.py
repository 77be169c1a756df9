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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.filters import FILTERS
from jinja2.sandbox import SandboxedEnvironment

from core.mail.details import (
    CONTROL_CHARS,
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
    format_long_date,
    format_short_time,
    interview_details,
    localize,
    placeholders_for,
    resolve_locale,
    resolve_timezone,
    text_to_html,
    with_signature,
)

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


class TemplateError(Exception):
    """A template problem, located in ``field`` ("subject" | "body") at ``line``/``column``
    (1-based, None when unknown). ``code`` is one of SYNTAX, UNKNOWN_PLACEHOLDER,
    NOT_ALLOWED_FOR_KIND, UNSUPPORTED, MULTILINE_SUBJECT, EMPTY_SUBJECT, MISSING_VALUE;
    ``placeholders`` names the placeholders concerned, if any."""

    def __init__(self, message: str, *, field: str = "body", line: int | None = None,
                 column: int | None = None, code: str = "SYNTAX",
                 placeholders: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.line = line
        self.column = column
        self.code = code
        self.placeholders = placeholders

    def copy(self) -> TemplateError:
        return TemplateError(self.message, field=self.field, line=self.line,
                             column=self.column, code=self.code, placeholders=self.placeholders)

    def __str__(self) -> str:
        where = self.field
        if self.line is not None:
            where += f", line {self.line}"
            if self.column is not None:
                where += f", column {self.column}"
        return f"{where}: {self.message}"


# --------------------------------------------------------------------------- analysis

_PLACEHOLDER_NAMES = {p.name: p for p in PLACEHOLDERS}
_PLAIN_FILTERS = ("upper", "lower", "title", "capitalize", "trim")
_DEFAULT_FILTERS = ("default", "d")
_ALLOWED_HELP = ("use placeholders like {{ candidate.first_name }}, text constants, the filters "
                 "upper, lower, title, capitalize, trim, default('…') and {% if %}")
_KEYWORDS = {"CallBlock": "call", "FilterBlock": "filter", "FromImport": "from",
             "Assign": "set", "AssignBlock": "set", "ExprStmt": "do"}
_EXPRESSIONS = {"Getattr": "attribute access", "Getitem": "[...] subscripts",
                "Call": "calling functions", "Test": "'is' tests", "CondExpr": "'if' expressions"}


class _Missing(Undefined):
    """The value of a placeholder the context cannot fill: falsy in ``{% if %}``, replaced
    by ``default(...)``, and recorded (never printed blank) when it reaches the output."""

    __slots__ = ("_placeholder", "_sink")

    def __init__(self, placeholder: str, sink: list[str]) -> None:
        super().__init__(hint=f"{placeholder} has no value", name=placeholder)
        self._placeholder = placeholder
        self._sink = sink

    def __str__(self) -> str:
        self._sink.append(self._placeholder)
        return ""


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined,
                               keep_trailing_newline=True, auto_reload=False, cache_size=0)
    env.globals.clear()
    env.tests.clear()
    env.filters = {name: FILTERS[name] for name in _PLAIN_FILTERS + _DEFAULT_FILTERS}
    return env


_ENV = _environment()


def _dotted(node: nodes.Node) -> str | None:
    """``candidate.first_name`` for Getattr(Name) chains, ``foo`` for a bare Name."""
    parts: list[str] = []
    while isinstance(node, nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if isinstance(node, nodes.Name) and node.ctx == "load":
        parts.append(node.name)
        return ".".join(reversed(parts))
    return None


def _column(source_lines: list[str], line: int | None, pattern: str) -> int | None:
    if line is None or not 1 <= line <= len(source_lines):
        return None
    match = re.search(pattern, source_lines[line - 1])
    return match.start() + 1 if match else None


@dataclass
class _Compiled:
    template: Template | None
    refs: tuple[str, ...]  # placeholder name for each flat variable p0, p1, ...
    first_line: dict[str, int]
    errors: tuple[TemplateError, ...]
    # Text and placeholders only (no filter, no {% if %}): the output is the text with each
    # placeholder's value in place, which a join writes without Jinja (a bulk renders
    # thousands). A str is text; an int is the index of a placeholder in refs.
    segments: tuple[str | int, ...] | None = None


def _segments(body: list[nodes.Node]) -> tuple[str | int, ...] | None:
    out: list[str | int] = []
    for node in body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                out.append(child.data)
            elif isinstance(child, nodes.Name) and re.fullmatch(r"p\d+", child.name):
                out.append(int(child.name[1:]))
            else:
                return None
    return tuple(out)


class _Analyzer:
    def __init__(self, source: str, field_name: str) -> None:
        self.lines = source.split("\n")
        self.field = field_name
        self.refs: list[str] = []
        self.first_line: dict[str, int] = {}
        self.errors: list[TemplateError] = []

    def _error(self, message: str, node: nodes.Node, code: str, pattern: str | None = None,
               placeholder: str | None = None) -> None:
        line = getattr(node, "lineno", None)
        column = _column(self.lines, line, pattern) if pattern else None
        self.errors.append(TemplateError(message, field=self.field, line=line, column=column,
                                         code=code,
                                         placeholders=(placeholder,) if placeholder else ()))

    def statements(self, body: list[nodes.Node]) -> None:
        for node in body:
            if isinstance(node, nodes.Output):
                node.nodes = [self.expr(child, output=True) for child in node.nodes]
            elif isinstance(node, nodes.If):
                node.test = self.expr(cast(nodes.Expr, node.test))
                self.statements(node.body)
                for branch in node.elif_:
                    branch.test = self.expr(cast(nodes.Expr, branch.test))
                    self.statements(branch.body)
                self.statements(node.else_)
            else:
                kind = type(node).__name__
                keyword = _KEYWORDS.get(kind, kind.lower())
                self._error(f"not allowed in templates: {{% {keyword} %}}; {_ALLOWED_HELP}",
                            node, "UNSUPPORTED", r"\{%-?\s*" + re.escape(keyword) + r"\b")

    def expr(self, node: nodes.Expr, output: bool = False) -> nodes.Expr:
        name = _dotted(node)
        if name is not None:
            pattern = r"\b" + r"\s*\.\s*".join(re.escape(p) for p in name.split(".")) + r"\b"
            if name not in _PLACEHOLDER_NAMES:
                self._error(f"unknown placeholder '{name}'", node, "UNKNOWN_PLACEHOLDER",
                            pattern, name)
            self.first_line.setdefault(name, node.lineno)
            self.refs.append(name)
            return nodes.Name(f"p{len(self.refs) - 1}", "load", lineno=node.lineno)
        if isinstance(node, nodes.TemplateData) and output:
            return node
        if isinstance(node, nodes.Const) and isinstance(node.value, str):
            return node
        if isinstance(node, nodes.Not):
            node.node = self.expr(node.node)
            return node
        if isinstance(node, nodes.And | nodes.Or):
            node.left = self.expr(node.left)
            node.right = self.expr(node.right)
            return node
        if isinstance(node, nodes.Filter) and node.node is not None:
            self._check_filter(node)
            node.node = self.expr(node.node)
            return node
        kind = type(node).__name__
        what = _EXPRESSIONS.get(kind, f"'{kind}' expressions")
        self._error(f"not allowed in templates: {what}; {_ALLOWED_HELP}", node, "UNSUPPORTED")
        return node

    def _check_filter(self, node: nodes.Filter) -> None:
        pattern = r"\|\s*" + re.escape(node.name) + r"\b"
        if node.name in _PLAIN_FILTERS:
            ok = not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
        elif node.name in _DEFAULT_FILTERS:
            args: dict[str, nodes.Expr] = dict(zip(("default_value", "boolean"), node.args,
                                                  strict=False))
            args.update({str(kw.key): kw.value for kw in node.kwargs})
            text, flag = args.pop("default_value", None), args.pop("boolean", None)
            ok = (len(node.args) <= 2 and not args and not node.dyn_args
                  and not node.dyn_kwargs and isinstance(text, nodes.Const)
                  and isinstance(text.value, str) and bool(text.value.strip())
                  and (flag is None or (isinstance(flag, nodes.Const)
                                        and isinstance(flag.value, bool))))
            if not ok:
                self._error("default needs one non-empty text, like default('there')",
                            node, "UNSUPPORTED", pattern)
            return
        else:
            self._error(f"filter '{node.name}' is not allowed; {_ALLOWED_HELP}", node,
                        "UNSUPPORTED", pattern)
            return
        if not ok:
            self._error(f"filter '{node.name}' takes no arguments", node, "UNSUPPORTED",
                        pattern)


@lru_cache(maxsize=512)
def _compile(source: str, field_name: str) -> _Compiled:
    if field_name == "subject" and ("\n" in source or "\r" in source):
        return _Compiled(None, (), {}, (TemplateError(
            "the subject must be a single line", field=field_name, line=2,
            code="MULTILINE_SUBJECT"),))
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        ast = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return _Compiled(None, (), {}, (TemplateError(
            exc.message or "syntax error", field=field_name, line=exc.lineno, code="SYNTAX"),))
    analyzer = _Analyzer(source, field_name)
    analyzer.statements(ast.body)
    structural = [e for e in analyzer.errors if e.code != "UNKNOWN_PLACEHOLDER"]
    template = None if structural else _ENV.from_string(ast)
    return _Compiled(template, tuple(analyzer.refs), analyzer.first_line,
                     tuple(analyzer.errors), _segments(ast.body) if template else None)


def _compiled_or_raise(source: str, field_name: str, allow_unknown: bool) -> _Compiled:
    compiled = _compile(source, field_name)
    for error in compiled.errors:
        if allow_unknown and error.code == "UNKNOWN_PLACEHOLDER":
            continue
        raise error.copy()
    return compiled


# --------------------------------------------------------------------------- values


def _one_line(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(CONTROL_CHARS.sub(" ", value).split())
    return value or None


def _values(ctx: RenderContext) -> dict[str, str | None]:
    cand = ctx.candidate
    full = _one_line(cand.full_name) or _one_line(
        " ".join(p for p in (cand.first_name, cand.last_name) if p))
    values: dict[str, str | None] = {
        "candidate.first_name": _one_line(cand.first_name),
        "candidate.last_name": _one_line(cand.last_name),
        "candidate.full_name": full,
        "candidate.email": _one_line(cand.email),
        "position.title": _one_line(ctx.position.title) if ctx.position else None,
        "company.name": _one_line(ctx.company.name),
        "sender.name": _one_line(ctx.sender.name),
        "sender.email": _one_line(ctx.sender.email),
        "rejection.reason": _one_line(ctx.rejection.reason) if ctx.rejection else None,
    }
    iv = ctx.interview
    if iv is not None:
        locale = resolve_locale(cand.language)
        zone_name, zone = resolve_timezone(cand.timezone)
        start, end = localize(iv.starts_at, zone), localize(iv.ends_at, zone)
        details = "\n".join(
            x for x in (_one_line(line) for line in
                        interview_details(iv, cand.language, cand.timezone).split("\n")) if x)
        values.update({
            "interview.title": _one_line(iv.title),
            "interview.date": format_long_date(start.date(), locale),
            "interview.start_time": format_short_time(start, locale),
            "interview.end_time": format_short_time(end, locale),
            "interview.timezone": zone_name,
            "interview.location": _one_line(iv.location),
            "interview.video_link": _one_line(iv.video_link),
            "interview.interviewers": _one_line(
                ", ".join(n for n in (_one_line(i) for i in iv.interviewers) if n)),
            "interview.details": details or None,
        })
    return values


def _run(compiled: _Compiled, values: dict[str, str | None], sink: list[str]) -> str:
    assert compiled.template is not None
    if compiled.segments is not None:
        out: list[str] = []
        for segment in compiled.segments:
            if isinstance(segment, str):
                out.append(segment)
                continue
            name = compiled.refs[segment]
            value = values.get(name)
            if value:
                out.append(value)
            else:
                sink.append(name)  # what printing _Missing(name, sink) does
        return "".join(out)
    variables: dict[str, object] = {}
    for index, name in enumerate(compiled.refs):
        value = values.get(name)
        variables[f"p{index}"] = value if value else _Missing(name, sink)
    try:
        return compiled.template.render(variables)
    except JinjaError as exc:  # defensive: validated templates have nothing that can fail
        raise TemplateError(str(exc) or "template error", code="UNSUPPORTED") from exc


def _order(names: list[str]) -> list[str]:
    known = list(_PLACEHOLDER_NAMES)
    unique = set(names)
    return sorted(unique, key=lambda n: (known.index(n) if n in _PLACEHOLDER_NAMES
                                         else len(known), n))


# --------------------------------------------------------------------------- public API


def used_placeholders(text: str) -> set[str]:
    """Every name a template refers to (catalogue or not). Raises TemplateError on a syntax
    error."""
    compiled = _compile(text, "body")
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
        compiled = _compile(text, field_name)
        errors.extend(e.copy() for e in compiled.errors)
        reported: set[str] = set()
        for name in compiled.refs:
            if name in _PLACEHOLDER_NAMES and name not in allowed and name not in reported:
                reported.add(name)
                line = compiled.first_line.get(name)
                pattern = r"\b" + r"\s*\.\s*".join(re.escape(p) for p in name.split("."))
                errors.append(TemplateError(
                    f"placeholder '{name}' is not available in {kind} templates",
                    field=field_name, line=line,
                    column=_column(text.replace("\r\n", "\n").split("\n"), line, pattern),
                    code="NOT_ALLOWED_FOR_KIND", placeholders=(name,)))
    return errors


def missing_placeholders(subject: str, body: str, ctx: RenderContext) -> list[str]:
    """Placeholders the template would print that ``ctx`` cannot fill (no interview, no
    position, blank e-mail...), plus names outside the catalogue. Raises TemplateError for
    syntax errors and unsupported constructs."""
    values = _values(ctx)
    sink: list[str] = []
    for text, field_name in ((subject, "subject"), (body, "body")):
        compiled = _compiled_or_raise(text, field_name, allow_unknown=True)
        sink.extend(n for n in compiled.refs if n not in _PLACEHOLDER_NAMES)
        _run(compiled, values, sink)
    return _order(sink)


def render(subject: str, body: str, ctx: RenderContext) -> RenderedText:
    """Render subject and body. Raises TemplateError for any invalid template or any
    placeholder without a value; never prints a placeholder blank. The subject comes out
    as one line (whitespace in values collapsed)."""
    compiled_subject = _compiled_or_raise(subject, "subject", allow_unknown=False)
    compiled_body = _compiled_or_raise(body, "body", allow_unknown=False)
    values = _values(ctx)
    out: dict[str, str] = {}
    for compiled, field_name in ((compiled_subject, "subject"), (compiled_body, "body")):
        sink: list[str] = []
        out[field_name] = _run(compiled, values, sink)
        if sink:
            names = tuple(_order(sink))
            raise TemplateError(f"no value for {', '.join(names)}", field=field_name,
                                line=compiled.first_line.get(sink[0]), code="MISSING_VALUE",
                                placeholders=names)
    rendered_subject = _one_line(out["subject"])
    if not rendered_subject:
        raise TemplateError("the subject is empty", field="subject", code="EMPTY_SUBJECT")
    return RenderedText(subject=rendered_subject, body=out["body"])
