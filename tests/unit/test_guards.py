"""schema/guards.py: depth, alias, token limits and the introspection switch.

Mostly against a small schema defined here; the last tests use the product's types.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import strawberry
from graphql import get_introspection_query
from strawberry.extensions import ParserCache, ValidationCache

from core.settings import Settings
from schema.guards import (
    INTROSPECTION_DISABLED,
    MAX_TOKENS,
    QUERY_TOO_DEEP,
    TOO_MANY_ALIASES,
    guard_extensions,
)


@strawberry.type
class Node:
    name: str = "n"

    @strawberry.field
    def child(self) -> Node:
        return Node()

    @strawberry.field
    def children(self) -> list[Node]:
        return [Node(), Node()]


@strawberry.type
class Query:
    @strawberry.field
    def node(self) -> Node:
        return Node()

    @strawberry.field
    def hello(self) -> str:
        return "world"


def make_schema(**settings: Any) -> strawberry.Schema:
    s = Settings(**settings)
    return strawberry.Schema(query=Query, extensions=[
        *guard_extensions(s), ParserCache(maxsize=64), ValidationCache(maxsize=64),
    ])


def nested(depth: int) -> str:
    """A query whose deepest field is `depth` levels down: { node { child { … name } } }."""
    assert depth >= 2
    inner = "name"
    for _ in range(depth - 2):
        inner = f"child {{ {inner} }}"
    return f"{{ node {{ {inner} }} }}"


def aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: hello" for i in range(n)) + " }"


async def run(schema: strawberry.Schema, query: str) -> tuple[Any, list[dict[str, Any]]]:
    result = await schema.execute(query)
    errors = [e.formatted for e in result.errors or []]
    return result.data, errors


def codes(errors: list[dict[str, Any]]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in errors]


async def test_depth_at_limit_runs_and_50_deep_is_refused() -> None:
    schema = make_schema()  # default max_query_depth 15
    data, errors = await run(schema, nested(15))
    assert errors == [] and data is not None
    data, errors = await run(schema, nested(50))
    assert data is None
    assert codes(errors) == [QUERY_TOO_DEEP]
    assert errors[0]["message"] == (
        "Query is too deep: the anonymous query nests fields 50 levels deep; the limit is 15."
    )
    assert errors[0]["extensions"] == {"code": QUERY_TOO_DEEP, "depth": 50, "maxDepth": 15}


async def test_depth_counts_through_fragments_and_names_the_operation() -> None:
    schema = make_schema(max_query_depth=4)
    q = """
    query Deep { node { ...A } }
    fragment A on Node { child { ...B } }
    fragment B on Node { ... on Node { child { child { name } } } }
    """
    _, errors = await run(schema, q)
    assert codes(errors) == [QUERY_TOO_DEEP]
    assert "operation 'Deep' nests fields 5 levels deep; the limit is 4" in errors[0]["message"]


async def test_1000_aliases_refused_100_allowed() -> None:
    schema = make_schema()  # default max_aliases 100
    data, errors = await run(schema, aliases(100))
    assert errors == [] and data is not None and data["a99"] == "world"
    data, errors = await run(schema, aliases(1000))
    assert data is None
    assert codes(errors) == [TOO_MANY_ALIASES]
    assert errors[0]["message"] == (
        "Too many aliases: the document uses 1000 field aliases "
        "(fragments counted at every spread); the limit is 100."
    )


async def test_fragment_amplification_is_measured_without_expanding() -> None:
    # F0 spreads F1 twice, F1 spreads F2 twice … : 2^40 aliases if expanded.
    levels = 40
    frags = [f"fragment F{i} on Query {{ ...F{i + 1} x{i}: hello }}" for i in range(levels)]
    frags[-1] = f"fragment F{levels - 1} on Query {{ y: hello }}"
    frags = [f.replace(f"...F{i + 1}", f"...F{i + 1} ...F{i + 1}") if i < levels - 1 else f
             for i, f in enumerate(frags)]
    q = "{ ...F0 }\n" + "\n".join(frags)
    schema = make_schema()
    started = time.perf_counter()
    _, errors = await run(schema, q)
    assert time.perf_counter() - started < 2
    assert TOO_MANY_ALIASES in codes(errors)


async def test_refusal_is_stable_with_validation_cache() -> None:
    schema = make_schema(max_aliases=3)
    for _ in range(3):
        _, errors = await run(schema, aliases(4))
        assert codes(errors) == [TOO_MANY_ALIASES]
        _, errors = await run(schema, aliases(3))
        assert errors == []


async def test_standard_introspection_allowed_even_with_low_depth_limit() -> None:
    for depth in (15, 5):
        schema = make_schema(max_query_depth=depth)
        data, errors = await run(schema, get_introspection_query(
            descriptions=True, specified_by_url=True, directive_is_repeatable=True,
            schema_description=True, input_value_deprecation=True))
        assert errors == [], errors
        assert data["__schema"]["queryType"]["name"] == "Query"
        # ...but a regular query is still held to the configured limit.
        _, errors = await run(schema, nested(depth + 1))
        assert codes(errors) == [QUERY_TOO_DEEP]


async def test_deep_introspection_chain_refused() -> None:
    inner = "name"
    for _ in range(10):
        inner = f"fields {{ type {{ {inner} }} }}"
    q = f'{{ __type(name: "Query") {{ {inner} }} }}'
    _, errors = await run(make_schema(), q)
    # graphql-core's own MaxIntrospectionDepthRule may add its error too.
    assert QUERY_TOO_DEEP in codes(errors)
    mine = errors[codes(errors).index(QUERY_TOO_DEEP)]
    assert "nests fields 22 levels deep; the limit is 15" in mine["message"]


async def test_introspection_switch() -> None:
    closed = make_schema(introspection=False)
    for q in ("{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }'):
        data, errors = await run(closed, q)
        assert data is None
        assert codes(errors) == [INTROSPECTION_DISABLED]
        assert "Introspection is disabled on this server" in errors[0]["message"]
    data, errors = await run(closed, "{ __typename hello }")
    assert errors == [] and data == {"__typename": "Query", "hello": "world"}
    open_ = make_schema(introspection=True)
    data, errors = await run(open_, "{ __schema { queryType { name } } }")
    assert errors == [] and data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_token_limit() -> None:
    schema = make_schema(max_aliases=100_000)
    n = MAX_TOKENS // 3 + 10  # "aN : hello" is three tokens
    data, errors = await run(schema, aliases(n))
    assert data is None
    assert len(errors) == 1
    assert f"Document contains more than {MAX_TOKENS} tokens" in errors[0]["message"]


async def test_absurd_nesting_is_refused_not_crashed() -> None:
    # Within the token limit but far deeper than any recursion-friendly document.
    q = "{ node { " + "child { " * 3000 + "name" + " }" * 3001 + " }"
    data, errors = await run(make_schema(), q)
    assert data is None
    assert len(errors) == 1
    assert ("nested too deeply" in errors[0]["message"]  # graphql-core's parser guard
            or codes(errors) == [QUERY_TOO_DEEP])


# --- the product's schema -----------------------------------------------------------------


def _product_schema(**settings: Any) -> strawberry.Schema:
    import schema as product

    return strawberry.Schema(
        query=product.Query, mutation=product.Mutation, subscription=product.Subscription,
        types=product.NODE_TYPES, extensions=[*guard_extensions(Settings(**settings))],
    )


async def test_product_types_deep_and_aliased_queries_refused() -> None:
    s = _product_schema()
    inner = "id"
    for _ in range(25):
        inner = f"applications {{ candidate {{ {inner} }} }}"
    _, errors = await run(s, f'{{ candidate(id: "x") {{ {inner} }} }}')
    assert codes(errors) == [QUERY_TOO_DEEP]
    _, errors = await run(s, "{ " + " ".join(f"v{i}: viewer {{ id }}" for i in range(1000)) + " }")
    assert codes(errors) == [TOO_MANY_ALIASES]
    _, errors = await run(s, get_introspection_query(input_value_deprecation=True))
    assert errors == []


def test_product_schema_has_the_guards_wired() -> None:
    from schema import schema as product_schema

    names = [getattr(e, "__name__", type(e).__name__) for e in product_schema.extensions]
    if "RecruitmailGuards" not in names:
        pytest.skip("schema/__init__.py does not add guard_extensions() yet")
    assert names.count("RecruitmailGuards") == 1
