"""Production guards for the GraphQL endpoint: depth, alias and token limits, introspection.

Wiring (schema/__init__.py)::

    from schema.guards import guard_extensions

    EXTENSIONS: list[Any] = [
        RequireAuthentication,
        *guard_extensions(),
        ParserCache(maxsize=256),
        ValidationCache(maxsize=256),
        MaskInternalErrors(),
    ]

What a client sees when a guard refuses a document: HTTP 200 with no ``data`` and one error
in ``errors`` whose message says what was exceeded and by how much, and whose
``extensions.code`` is one of ``QUERY_TOO_DEEP``, ``TOO_MANY_ALIASES``,
``INTROSPECTION_DISABLED`` (too many tokens: graphql-core's own syntax error "Document
contains more than N tokens. Parsing aborted."). Nothing is executed.

Design notes
- The limits are graphql-core validation rules added by one strawberry extension. The rule
  classes are built once per ``guard_extensions()`` call and the extension is handed to
  strawberry as a class (a fresh instance per request, no shared state between concurrent
  requests), so strawberry's ValidationCache, keyed on the rule tuple, keeps hitting.
- Depth and alias counts follow fragment spreads and are memoised per fragment, so a
  document of fragments that each spread the next one twice (2^n expansion) is measured
  in linear time and refused, instead of being expanded.
- Introspection is no free pass either (``__type { fields { type { fields { … } } } }``
  multiplies list sizes level by level): ``__schema`` / ``__type`` subtrees are limited to
  ``max(max_depth, INTROSPECTION_MAX_DEPTH)``. The standard introspection query (graphql-js
  16 / graphql-core 3.2, as sent by GraphiQL) has depth 15, so lowering max_depth never
  breaks GraphiQL's docs and autocompletion.
- Settings: ``RECRUITMAIL_MAX_QUERY_DEPTH`` (15), ``RECRUITMAIL_MAX_ALIASES`` (100),
  ``RECRUITMAIL_INTROSPECTION`` (true). The token limit is ``MAX_TOKENS`` below unless the
  settings object grows a ``max_query_tokens`` field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.language import DocumentNode
from strawberry.extensions import SchemaExtension

from core.settings import Settings, get_settings

MAX_TOKENS = 20_000
INTROSPECTION_MAX_DEPTH = 15

QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


class _DocumentMeasure:
    """Depth and alias count of a document's operations, fragments memoised."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments: dict[str, FragmentDefinitionNode] = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._depth: dict[str, int] = {}
        self._depth_no_introspection: dict[str, int] = {}
        self._aliases: dict[str, int] = {}
        self._active: set[str] = set()

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        """Levels of fields below this selection set (``{ a { b } }`` has depth 2)."""
        return self._measure_depth(selection_set, self._depth, skip_introspection=False)

    def depth_without_introspection(self, selection_set: SelectionSetNode | None) -> int:
        """Like depth(), with ``__schema`` / ``__type`` subtrees left out."""
        return self._measure_depth(selection_set, self._depth_no_introspection,
                                   skip_introspection=True)

    def _measure_depth(self, selection_set: SelectionSetNode | None, memo: dict[str, int], *,
                       skip_introspection: bool) -> int:
        if selection_set is None:
            return 0

        def again(sub: SelectionSetNode | None) -> int:
            return self._measure_depth(sub, memo, skip_introspection=skip_introspection)

        deepest = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                if skip_introspection and sel.name.value in INTROSPECTION_FIELDS:
                    continue
                d = 1 + again(sel.selection_set)
            elif isinstance(sel, InlineFragmentNode):
                d = again(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode):
                d = self._fragment(sel.name.value, memo, again)
            else:  # pragma: no cover - no other selection kinds exist
                d = 0
            deepest = max(deepest, d)
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        """Aliased fields below this selection set, a fragment counted at every spread."""
        if selection_set is None:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                total += (1 if sel.alias else 0) + self.aliases(sel.selection_set)
            elif isinstance(sel, InlineFragmentNode):
                total += self.aliases(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode):
                total += self._fragment(sel.name.value, self._aliases, self.aliases)
        return total

    def _fragment(self, name: str, memo: dict[str, int], measure: Any) -> int:
        if name in memo:
            return memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return 0  # unknown fragment or a cycle: other validation rules report those
        self._active.add(name)
        try:
            value: int = measure(fragment.selection_set)
        finally:
            self._active.discard(name)
        memo[name] = value
        return value


def _operations(context: ValidationContext) -> list[OperationDefinitionNode]:
    return [d for d in context.document.definitions if isinstance(d, OperationDefinitionNode)]


def _label(op: OperationDefinitionNode) -> str:
    return f"operation '{op.name.value}'" if op.name else f"the anonymous {op.operation.value}"


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    class QueryDepthLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _DocumentMeasure(context.document)
            for op in _operations(context):
                depth = measure.depth_without_introspection(op.selection_set)
                limit = max_depth
                if depth <= max_depth:
                    depth = measure.depth(op.selection_set)
                    limit = max(max_depth, INTROSPECTION_MAX_DEPTH)
                if depth > limit:
                    context.report_error(GraphQLError(
                        f"Query is too deep: {_label(op)} nests fields {depth} levels deep; "
                        f"the limit is {limit}.",
                        op,
                        extensions={"code": QUERY_TOO_DEEP, "depth": depth, "maxDepth": limit},
                    ))

    return QueryDepthLimit


def alias_limit_rule(max_aliases: int) -> type[ValidationRule]:
    class AliasLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _DocumentMeasure(context.document)
            total = sum(measure.aliases(op.selection_set) for op in _operations(context))
            if total > max_aliases:
                context.report_error(GraphQLError(
                    f"Too many aliases: the document uses {total} field aliases "
                    f"(fragments counted at every spread); the limit is {max_aliases}.",
                    extensions={"code": TOO_MANY_ALIASES, "aliases": total,
                                "maxAliases": max_aliases},
                ))

    return AliasLimit


class NoIntrospection(ValidationRule):
    """Refuses ``__schema`` and ``__type`` (``__typename`` stays allowed)."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if node.name.value in INTROSPECTION_FIELDS:
            self.report_error(GraphQLError(
                f"Introspection is disabled on this server: the field '{node.name.value}' "
                "cannot be queried.",
                node,
                extensions={"code": INTROSPECTION_DISABLED},
            ))


class GuardExtension(SchemaExtension):
    """Adds ``rules`` to validation and a token limit to parsing (see guard_extensions)."""

    rules: tuple[type[ValidationRule], ...] = ()
    max_tokens: int | None = None

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        if self.max_tokens is not None:
            ctx.parse_options["max_tokens"] = self.max_tokens
        ctx.validation_rules = (*ctx.validation_rules, *self.rules)
        yield


def guard_rules(settings: Settings | None = None) -> tuple[type[ValidationRule], ...]:
    s = settings or get_settings()
    rules: list[type[ValidationRule]] = [
        depth_limit_rule(s.max_query_depth),
        alias_limit_rule(s.max_aliases),
    ]
    if not s.introspection:
        rules.append(NoIntrospection)
    return tuple(rules)


def guard_extensions(settings: Settings | None = None) -> list[type[SchemaExtension]]:
    """The guard extensions for ``strawberry.Schema(extensions=...)``, from settings.

    Settings are read once, here (at schema build time): a changed limit needs a restart.
    """
    s = settings or get_settings()
    guard = type("RecruitmailGuards", (GuardExtension,), {
        "rules": guard_rules(s),
        "max_tokens": int(getattr(s, "max_query_tokens", MAX_TOKENS)),
    })
    return [guard]


__all__ = [
    "INTROSPECTION_DISABLED",
    "INTROSPECTION_MAX_DEPTH",
    "MAX_TOKENS",
    "QUERY_TOO_DEEP",
    "TOO_MANY_ALIASES",
    "GuardExtension",
    "NoIntrospection",
    "alias_limit_rule",
    "depth_limit_rule",
    "guard_extensions",
    "guard_rules",
]
