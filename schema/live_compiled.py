"""Status-change subscriptions made without running the GraphQL executor.

A bulk send makes three status changes a mail; a dashboard subscribed to
`messageStatusChanged` during a 10,000-mail bulk asks for 30,000 results. Executed by
graphql-core (a resolver call, a completion and an extension hook per field, an ORM object
per row), each cost the api ~165 µs, one execution shared by every subscriber of the
selection, and that CPU came out of the worker's share of the machine.

`compile_selection` turns a subscription to `messageStatusChanged` or
`messageStatusChanges` whose selection reads only plain fields (the change itself, the
message's columns, its candidate's columns) into a `Plan`: the columns to read (one query
a Redis message, only those columns) and a function from (event, row) to the result,
built exactly as the executor would build it (response keys and their order, aliases,
fragments, `@skip`/`@include`, `__typename`, enum names, ISO datetimes, global ids).
Anything else (a field with its own resolver such as `attachments`, a directive it does
not know, a document the validation or the guards would refuse, fragment variables)
compiles to None and runs through the executor as before, with the same answers and
errors. tests/integration/test_live_compiled.py compares both paths byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
    is_abstract_type,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
    get_variable_values,
)

from core.ids import to_global_id
from core.models import Candidate as CandidateRow
from core.models.enums import MessageStatus
from schema.guards import MAX_TOKENS, guard_rules
from schema.subscriptions import change_time, status_filter

ROOT_FIELDS = {"messageStatusChanged": False, "messageStatusChanges": True}  # name -> a list

Row = dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _name(value: Enum | None) -> str | None:
    return None if value is None else value.name


def _at(value: Any) -> str:
    """The change's `at` as the executor shows it (the DateTime scalar's ISO text)."""
    return change_time(value).isoformat()


def _const(value: str) -> Callable[[Row], str]:
    return lambda row: value


def _of_row(make: Callable[[Row], Any]) -> Callable[[dict[str, Any], Row], Any]:
    return lambda event, row: make(row)


def _previous(value: Any) -> str | None:
    return MessageStatus(value).name if value else None


def _full_name(row: Row, prefix: str) -> str:
    # The model's own rule (anonymized, first and last name, else the address).
    person = SimpleNamespace(**{name: row[prefix + name] for name in (
        "anonymized_at", "first_name", "last_name", "email")})
    value: str = CandidateRow.full_name.fget(person)  # type: ignore[attr-defined]
    return value


def _column(name: str, convert: Callable[[Any], Any] | None = None) -> Callable[[str], Any]:
    """A field that shows one column: (the columns it reads, the getter), given the prefix
    of the row's columns (`candidate__` for the message's candidate)."""
    def make(prefix: str) -> tuple[tuple[str, ...], Callable[[Row], Any]]:
        col = prefix + name
        if convert is None:
            return (col,), lambda row: row[col]
        return (col,), lambda row: convert(row[col])
    return make


def _addresses(name: str) -> Callable[[str], Any]:
    def make(prefix: str) -> tuple[tuple[str, ...], Callable[[Row], Any]]:
        col = prefix + name
        return (col,), lambda row: [str(a) for a in row[col] or []]
    return make


def _global_id(type_name: str) -> Callable[[str], Any]:
    def make(prefix: str) -> tuple[tuple[str, ...], Callable[[Row], Any]]:
        col = prefix + "id"
        return (col,), lambda row: to_global_id(type_name, row[col])
    return make


def _candidate_full_name(prefix: str) -> tuple[tuple[str, ...], Callable[[Row], Any]]:
    cols = tuple(prefix + n for n in ("anonymized_at", "first_name", "last_name", "email"))
    return cols, lambda row: _full_name(row, prefix)


def _anonymized(prefix: str) -> tuple[tuple[str, ...], Callable[[Row], Any]]:
    col = prefix + "anonymized_at"
    return (col,), lambda row: row[col] is not None


# The plain fields of the two row types (schema/types: fields without a resolver, shown
# by FromRow.from_row from the column of the same name or as from_row computes them).
MESSAGE_FIELDS: dict[str, Callable[[str], Any]] = {
    "id": _global_id("Message"),
    "kind": _column("kind", _name),
    "direction": _column("direction", _name),
    "status": _column("status", _name),
    "fromName": _column("from_name"),
    "fromAddress": _column("from_address"),
    "to": _addresses("to_addrs"),
    "cc": _addresses("cc_addrs"),
    "bcc": _addresses("bcc_addrs"),
    "subject": _column("subject"),
    "body": _column("body"),
    "createdAt": _column("created_at", _iso),
    "scheduledAt": _column("scheduled_at", _iso),
    "sentAt": _column("sent_at", _iso),
    "attempts": _column("attempts"),
    "error": _column("error"),
    "expectedSendAt": _column("expected_send_at", _iso),
}
CANDIDATE_FIELDS: dict[str, Callable[[str], Any]] = {
    "id": _global_id("Candidate"),
    "firstName": _column("first_name"),
    "lastName": _column("last_name"),
    "fullName": _candidate_full_name,
    "email": _column("email"),
    "language": _column("language"),
    "timezone": _column("timezone"),
    "anonymized": _anonymized,
}


class NotCompiled(Exception):
    """The selection needs the executor."""


@dataclass(frozen=True)
class Plan:
    """A compiled status-change subscription."""

    response_key: str
    many: bool  # messageStatusChanges: one list per Redis message
    accept: Callable[[dict[str, Any]], bool]  # the events its arguments take
    columns: tuple[str, ...]  # of the message rows (`candidate__…`: its candidate's)
    item: Callable[[dict[str, Any], Row], dict[str, Any]]


class _Compiler:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode,
                 variables: VariableValues) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {d.name.value: d for d in document.definitions
                          if isinstance(d, FragmentDefinitionNode)}
        self.columns: dict[str, None] = {"id": None}

    def _included(self, node: Any) -> bool:
        for directive in node.directives or ():
            if directive.name.value not in ("skip", "include"):
                raise NotCompiled(f"directive @{directive.name.value}")
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and include.get("if") is False)

    def _applies(self, condition: Any, runtime: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        named = self.schema.get_type(condition.name.value)
        if named is runtime:
            return True
        return is_abstract_type(named) and self.schema.is_sub_type(named, runtime)  # type: ignore[arg-type]

    def collect(self, runtime: GraphQLObjectType, sets: list[SelectionSetNode],
                ) -> dict[str, list[FieldNode]]:
        """The executor's CollectFields over several selection sets (one field's nodes)."""
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()

        def walk(selection_set: SelectionSetNode) -> None:
            for sel in selection_set.selections:
                if not self._included(sel):
                    continue
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    fields.setdefault(key, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    if self._applies(sel.type_condition, runtime):
                        walk(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    if name in visited:
                        continue
                    visited.add(name)
                    fragment = self.fragments.get(name)
                    if fragment is None:
                        raise NotCompiled(f"unknown fragment {name}")
                    if self._applies(fragment.type_condition, runtime):
                        walk(fragment.selection_set)

        for one in sets:
            walk(one)
        return fields

    def _object(self, runtime_name: str, nodes: list[FieldNode],
                table: dict[str, Callable[[str], Any]], prefix: str,
                nested: dict[str, Callable[[list[FieldNode]], Callable[[Row], Any]]],
                ) -> Callable[[Row], dict[str, Any]]:
        runtime = self.schema.get_type(runtime_name)
        assert isinstance(runtime, GraphQLObjectType)
        parts: list[tuple[str, Callable[[Row], Any]]] = []
        for key, field_nodes in self.collect(
                runtime, [n.selection_set for n in nodes if n.selection_set]).items():
            node = field_nodes[0]
            name = node.name.value
            if name == "__typename":
                parts.append((key, _const(runtime_name)))
                continue
            if node.arguments:
                raise NotCompiled(f"{runtime_name}.{name} with arguments")
            if name in nested:
                parts.append((key, nested[name](field_nodes)))
                continue
            make = table.get(name)
            if make is None:
                raise NotCompiled(f"{runtime_name}.{name}")
            cols, getter = make(prefix)
            self.columns.update(dict.fromkeys(cols))
            parts.append((key, getter))

        def build(row: Row) -> dict[str, Any]:
            return {key: get(row) for key, get in parts}

        return build

    def candidate(self, nodes: list[FieldNode]) -> Callable[[Row], Any]:
        return self._object("Candidate", nodes, CANDIDATE_FIELDS, "candidate__", {})

    def message(self, nodes: list[FieldNode]) -> Callable[[Row], Any]:
        return self._object("Message", nodes, MESSAGE_FIELDS, "",
                            {"candidate": self.candidate})

    def change(self, nodes: list[FieldNode]) -> Callable[[dict[str, Any], Row], dict[str, Any]]:
        runtime = self.schema.get_type("MessageStatusChange")
        assert isinstance(runtime, GraphQLObjectType)
        parts: list[tuple[str, Callable[[dict[str, Any], Row], Any]]] = []
        for key, field_nodes in self.collect(
                runtime, [n.selection_set for n in nodes if n.selection_set]).items():
            name = field_nodes[0].name.value
            if name == "__typename":
                parts.append((key, lambda event, row: "MessageStatusChange"))
            elif name == "message":
                parts.append((key, _of_row(self.message(field_nodes))))
            elif name == "status":
                parts.append((key, lambda event, row: MessageStatus(event["status"]).name))
            elif name == "previousStatus":
                parts.append((key, lambda event, row: _previous(event.get("previous"))))
            elif name == "at":
                parts.append((key, lambda event, row: _at(event.get("at"))))
            else:
                raise NotCompiled(f"MessageStatusChange.{name}")

        def item(event: dict[str, Any], row: Row) -> dict[str, Any]:
            return {key: get(event, row) for key, get in parts}

        return item


def _core_schema() -> GraphQLSchema:
    from schema import schema

    return schema._schema


@lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode | None:
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    # The executor's validation, the guards' limits (depth, aliases) included.
    rules = (*specified_rules, *guard_rules())
    return None if validate(_core_schema(), document, rules) else document


def compile_selection(query: str, operation_name: str | None,
                      variables: dict[str, Any] | None) -> Plan | None:
    """The plan of a subscription the executor is not needed for; None otherwise."""
    document = _document(query)
    if document is None:
        return None
    op = get_operation_ast(document, operation_name)
    if op is None or op.operation != OperationType.SUBSCRIPTION:
        return None
    if any(isinstance(d, FragmentDefinitionNode) and d.variable_definitions
           for d in document.definitions):
        return None  # fragment variables (experimental): the executor's business
    schema = _core_schema()
    coerced = get_variable_values(schema, op.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return None  # the executor answers with the errors
    compiler = _Compiler(schema, document, coerced)
    try:
        roots = compiler.collect(schema.subscription_type,  # type: ignore[arg-type]
                                 [op.selection_set])
        if len(roots) != 1:
            return None
        [(key, nodes)] = roots.items()
        name = nodes[0].name.value
        if name not in ROOT_FIELDS or len(nodes) != 1:
            return None
        assert schema.subscription_type is not None
        args = get_argument_values(schema.subscription_type.fields[name], nodes[0], coerced)
        item = compiler.change(nodes)
    except (NotCompiled, GraphQLError):
        return None
    return Plan(
        response_key=key, many=ROOT_FIELDS[name],
        accept=status_filter(args.get("candidateId"), args.get("bulkOperationId")),
        columns=tuple(compiler.columns), item=item)
