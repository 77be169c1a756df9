"""Checking templates: the Jinja sandbox, the constructs a template may use and the
placeholders it refers to, compiled once per source text.

Every placeholder reference is replaced by a flat variable (p0, p1, ...) holding a plain
string, and only then is the template compiled in a ``SandboxedEnvironment`` with no globals,
no tests and only the allowed filters. A template of text and placeholders only also gets
its ``segments``, which ``core.mail.template_fill`` joins without Jinja.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.filters import FILTERS
from jinja2.sandbox import SandboxedEnvironment

from core.mail.details import PLACEHOLDERS


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



PLACEHOLDER_NAMES = {p.name: p for p in PLACEHOLDERS}
_PLAIN_FILTERS = ("upper", "lower", "title", "capitalize", "trim")
_DEFAULT_FILTERS = ("default", "d")
_ALLOWED_HELP = ("use placeholders like {{ candidate.first_name }}, text constants, the filters "
                 "upper, lower, title, capitalize, trim, default('…') and {% if %}")
_KEYWORDS = {"CallBlock": "call", "FilterBlock": "filter", "FromImport": "from",
             "Assign": "set", "AssignBlock": "set", "ExprStmt": "do"}
_EXPRESSIONS = {"Getattr": "attribute access", "Getitem": "[...] subscripts",
                "Call": "calling functions", "Test": "'is' tests", "CondExpr": "'if' expressions"}

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


def column_of(source_lines: list[str], line: int | None, pattern: str) -> int | None:
    if line is None or not 1 <= line <= len(source_lines):
        return None
    match = re.search(pattern, source_lines[line - 1])
    return match.start() + 1 if match else None


@dataclass
class Compiled:
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
        column = column_of(self.lines, line, pattern) if pattern else None
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
            if name not in PLACEHOLDER_NAMES:
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
def compile_template(source: str, field_name: str) -> Compiled:
    if field_name == "subject" and ("\n" in source or "\r" in source):
        return Compiled(None, (), {}, (TemplateError(
            "the subject must be a single line", field=field_name, line=2,
            code="MULTILINE_SUBJECT"),))
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        ast = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return Compiled(None, (), {}, (TemplateError(
            exc.message or "syntax error", field=field_name, line=exc.lineno, code="SYNTAX"),))
    analyzer = _Analyzer(source, field_name)
    analyzer.statements(ast.body)
    structural = [e for e in analyzer.errors if e.code != "UNKNOWN_PLACEHOLDER"]
    template = None if structural else _ENV.from_string(ast)
    return Compiled(template, tuple(analyzer.refs), analyzer.first_line,
                     tuple(analyzer.errors), _segments(ast.body) if template else None)


def compiled_or_raise(source: str, field_name: str, allow_unknown: bool) -> Compiled:
    compiled = compile_template(source, field_name)
    for error in compiled.errors:
        if allow_unknown and error.code == "UNKNOWN_PLACEHOLDER":
            continue
        raise error.copy()
    return compiled
