"""Relay plumbing: the Node interface, global ids, keyset cursors and paging."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from core.ids import from_global_id, parse_id, to_global_id
from schema.errors import INVALID_INPUT, graphql_error

MAX_PAGE = 200
DEFAULT_PAGE = 50

M = TypeVar("M", bound=Model)


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
