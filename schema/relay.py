"""Relay plumbing: the Node interface, global ids, the types by name, keyset cursors, paging
and the one connection shape every list uses.

The GraphQL types refer to one another by name (``strawberry.LazyType`` annotations) and build
or load one another through the registries here (``TYPES``, ``NODE_RESOLVERS``), so the type
modules never import one another."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import GenericAlias
from typing import Any, Generic, Self, TypeVar

import strawberry
from strawberry.types.base import get_object_definition
from strawberry.types.lazy_type import LazyType
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from core.ids import from_global_id, parse_id, to_global_id
from schema.errors import INVALID_INPUT, graphql_error

MAX_PAGE = 200
DEFAULT_PAGE = 50

M = TypeVar("M", bound=Model)
T = TypeVar("T")


@strawberry.interface(description="An object with a global, opaque ID.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def gid(type_name: str, pk: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(to_global_id(type_name, pk))


def uuid_of(value: str | None, type_name: str) -> uuid.UUID | None:
    """The uuid in a global id of the given GraphQL type; None for anything else."""
    return parse_id(value, type_name)


# --- the types by name ------------------------------------------------------------------
# GraphQL type name -> the strawberry class. Every module a lazy annotation names is imported
# when the schema is built, so by the time a resolver runs each type has registered itself.
TYPES: dict[str, Any] = {}

K = TypeVar("K", bound=type)


def registered(cls: K) -> K:
    """Class decorator (above @strawberry.type): make the type buildable by its GraphQL name."""
    TYPES[get_object_definition(cls, strict=True).name] = cls
    return cls


def lazy(type_name: str, module: str) -> LazyType[Any, Any]:
    """A field's GraphQL type given by name, for `strawberry.field(graphql_type=...)`."""
    return LazyType(type_name, module)


def lazy_list(type_name: str, module: str) -> GenericAlias:
    """`list[...]` of a type given by name, for `strawberry.field(graphql_type=...)`."""
    return GenericAlias(list, (lazy(type_name, module),))


class FromRow:
    """Mixin of the Node types that show one database row (kept as their Private `row`).

    `from_row` fills `id` with the row's global id and every plain field (one without a
    resolver) with the row's attribute of the same name; `values` give the fields that are
    not a column as it is (e.g. Candidate.anonymized) and Private extras."""

    @classmethod
    def from_row(cls, row: Any, **values: Any) -> Self:
        type_name, columns = _columns(cls)
        make: Callable[..., Self] = cls
        return make(id=gid(type_name, row.id), row=row, **values, **{
            name: getattr(row, name) for name in columns if name not in values})


# Node type -> (its GraphQL name, its plain fields but `id`); filled on first use.
_COLUMNS: dict[type, tuple[str, tuple[str, ...]]] = {}


def _columns(cls: type) -> tuple[str, tuple[str, ...]]:
    found = _COLUMNS.get(cls)
    if found is None:
        definition = get_object_definition(cls, strict=True)
        found = _COLUMNS[cls] = (definition.name, tuple(
            f.python_name for f in definition.fields
            if f.base_resolver is None and f.python_name != "id"))
    return found


def build(type_name: str, row: Any, **extra: Any) -> Any:
    """The GraphQL object of type `type_name` for a database row (its `from_row`)."""
    return TYPES[type_name].from_row(row, **extra)


async def load(info: Any, type_name: str, pk: uuid.UUID | None) -> Any:
    """The object of that type with that primary key, if the viewer may see it (the type's
    node resolver); None for no key."""
    return None if pk is None else await NODE_RESOLVERS[type_name](info, pk)


async def load_required(info: Any, type_name: str, pk: uuid.UUID | None) -> Any:
    return present(await load(info, type_name, pk))


def by_id(type_name: str) -> Callable[..., Awaitable[Any]]:
    """The resolver of a `thing(id: ID!): Thing` query field (typed by the field's annotation):
    the viewer's object behind a global id of that type; None for any other id, as node(id:)."""

    async def resolve(info: strawberry.Info, id: strawberry.ID) -> Any:
        return await load(info, type_name, uuid_of(id, type_name))

    return resolve


def present(found: T | None) -> T:
    """The object behind a non-null relation (its row always exists)."""
    assert found is not None
    return found


# --- node(id:) -------------------------------------------------------------------------
# GraphQL type name -> async (info, uuid) -> the object, or None when not the viewer's.
NodeResolver = Callable[[Any, uuid.UUID], Awaitable[Any]]
NODE_RESOLVERS: dict[str, NodeResolver] = {}


R = TypeVar("R", bound=Callable[..., Awaitable[Any]])


def node_resolver(type_name: str) -> Callable[[R], R]:
    def register(fn: R) -> R:
        NODE_RESOLVERS[type_name] = fn
        return fn

    return register


def loaded_node(type_name: str,
                loader: str) -> Callable[[Any, uuid.UUID | None], Awaitable[Any]]:
    """Register and return the node resolver of a type whose rows the request loader
    `loader` fetches (the loaders see only the viewer's company); it also takes None."""

    async def resolve(info: Any, pk: uuid.UUID | None) -> Any:
        if pk is None:
            return None
        row = await getattr(info.context.loaders, loader).load(pk)
        return build(type_name, row) if row else None

    NODE_RESOLVERS[type_name] = resolve
    return resolve


async def resolve_node(info: Any, global_id: str) -> Any:
    parsed = from_global_id(global_id)
    if parsed is None:
        return None
    resolver = NODE_RESOLVERS.get(parsed[0])
    return await resolver(info, parsed[1]) if resolver else None


# --- keyset cursors over (created_at, id) -------------------------------------------------


def encode_cursor(row: Model) -> str:
    raw = f"{row.created_at.isoformat()}|{row.pk}".encode()  # type: ignore[attr-defined]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        stamp, _, pk = text.partition("|")
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise ValueError("cursor time without offset")
        return at, uuid.UUID(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise graphql_error("`after` is not a cursor of this list.", INVALID_INPUT) from None


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise graphql_error(f"`first` must be between 1 and {MAX_PAGE}.", INVALID_INPUT)
    return first


@dataclass
class Page(Generic[M]):
    rows: list[M]
    cursors: list[str]
    has_next_page: bool
    total_count: int

    @property
    def page_info(self) -> PageInfo:
        return PageInfo(has_next_page=self.has_next_page,
                        end_cursor=self.cursors[-1] if self.cursors else None)


async def paginate(qs: QuerySet[M], first: int | None, after: str | None, *,
                   newest_first: bool = True) -> Page[M]:
    """One page of `qs` in (created_at, id) order; stable while rows are being added."""
    size = page_size(first)
    key = decode_cursor(after) if after else None
    total = await qs.count()
    if key is not None:
        at, pk = key
        if newest_first:
            qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
        else:
            qs = qs.filter(Q(created_at__gt=at) | Q(created_at=at, id__gt=pk))
    order = ("-created_at", "-id") if newest_first else ("created_at", "id")
    rows = list(await qs.order_by(*order).limit(size + 1))
    has_next = len(rows) > size
    rows = rows[:size]
    return Page(rows, [encode_cursor(r) for r in rows], has_next, total)


# --- connections --------------------------------------------------------------------------


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    """Specialised per node type by a subclass named `<Type>Connection` (its edges are then
    named `<Type>Edge`), e.g. `class MessageConnection(Connection[Message])`."""

    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int


def connection(page: Page[M], type_name: str) -> Any:
    """The `<type_name>Connection` of one page of rows, each node built by `build`."""
    node_type = TYPES[type_name]
    return TYPES[f"{type_name}Connection"](
        edges=[Edge(cursor=c, node=node_type.from_row(r))
               for r, c in zip(page.rows, page.cursors, strict=True)],
        page_info=page.page_info, total_count=page.total_count)
