"""Some columns of a company's rows, by id, in one statement whose text never changes.

Live subscriptions read the rows a Redis message of status changes names (schema/live.py),
hundreds of times a second during a bulk send. Through the ORM each read built its SQL
anew, with one placeholder per id, so on PostgreSQL every batch size was a statement of its
own to prepare (asyncpg keeps 100); here PostgreSQL gets one text per column set (the
ids as one parameter), prepared once per connection, and the values are converted by the
ORM's own converters of `values()`. `related__column` reads a column of the row a foreign
key points at (a LEFT JOIN).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

from tortoise import connections
from tortoise.models import Model


@dataclass(frozen=True)
class _Statement:
    select: str  # SELECT … FROM … LEFT JOIN … (no WHERE)
    table: str
    convert: tuple[Callable[[Any], Any], ...]


_STATEMENTS: dict[tuple[type[Model], tuple[str, ...], str], _Statement] = {}


def _statement(model: type[Model], columns: tuple[str, ...], dialect: str) -> _Statement:
    key = (model, columns, dialect)
    found = _STATEMENTS.get(key)
    if found is not None:
        return found
    meta = model._meta
    table = meta.db_table
    joins: dict[str, str] = {}
    exprs: list[str] = []
    for i, column in enumerate(columns):
        relation, _, name = column.rpartition("__")
        if relation:
            fk = meta.fields_map[relation]
            related: type[Model] = fk.related_model  # type: ignore[attr-defined]
            alias = f"r_{relation}"
            joins[relation] = (
                f'LEFT JOIN "{related._meta.db_table}" "{alias}" '
                f'ON "{alias}"."id" = "{table}"."{fk.source_field}"')  # type: ignore[attr-defined]
            exprs.append(f'"{alias}"."{related._meta.fields_db_projection[name]}" AS "c{i}"')
        else:
            exprs.append(f'"{table}"."{meta.fields_db_projection[name]}" AS "c{i}"')
    # The converters values() uses for these columns on this database.
    query = model.filter(id__in=[]).values(*columns)
    convert = tuple(query.resolve_to_python_value(model, c) for c in columns)
    found = _STATEMENTS[key] = _Statement(
        select=f'SELECT {", ".join(exprs)} FROM "{table}" {" ".join(joins.values())}',
        table=table, convert=convert)
    return found


class Read(NamedTuple):
    """What row_columns runs: the columns read (the asked ones, then `company_id` when not
    among them), the SQL, its parameters and each column's converter."""

    columns: tuple[str, ...]
    sql: str
    params: list[Any]
    convert: tuple[Callable[[Any], Any], ...]


def statement(model: type[Model], columns: tuple[str, ...], ids: Collection[uuid.UUID],
              dialect: str) -> Read:
    """The statement of row_columns."""
    # The company is checked by the caller, not in the WHERE clause: right after a bulk
    # insert the statistics still say "the company has 3 messages", and a plan that starts
    # from the company's index then tests every one of its rows against the ids (644 ms
    # for 20,000 messages, where the primary key takes 0.6 ms); by id alone the key is the
    # only way.
    wanted = columns if "company_id" in columns else (*columns, "company_id")
    st = _statement(model, wanted, dialect)
    if dialect == "postgres":
        # The ids as one text (a uuid[] parameter would make asyncpg introspect the array
        # type on every new connection: three statements more), turned into an array once
        # per execution by the sub-select (an InitPlan), not once per row tested.
        sql = (f'{st.select} WHERE "{st.table}"."id" = '
               f"ANY((SELECT string_to_array($1::text, ',')::uuid[])::uuid[])")
        return Read(wanted, sql, [",".join(str(i) for i in ids)], st.convert)
    marks = ", ".join("?" for _ in ids)
    return Read(wanted, f'{st.select} WHERE "{st.table}"."id" IN ({marks})',
                [str(i) for i in ids], st.convert)


async def row_columns(model: type[Model], company_id: uuid.UUID, ids: Collection[uuid.UUID],
                      columns: tuple[str, ...]) -> dict[uuid.UUID, dict[str, Any]]:
    """{id: {column: value}} of the company's rows of `model` among `ids`; `columns` must
    start with "id"."""
    assert columns and columns[0] == "id"
    if not ids:
        return {}
    conn = connections.get("default")
    read = statement(model, columns, ids, conn.capabilities.dialect)
    added = "company_id" not in columns  # read for the check only
    names = [f"c{i}" for i in range(len(read.columns))]
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for raw in await conn.execute_query_dict(read.sql, read.params):
        row = {column: convert(raw[name])
               for column, name, convert in zip(read.columns, names, read.convert, strict=True)}
        owner = row.pop("company_id") if added else row["company_id"]
        if str(owner) == str(company_id):
            out[row["id"]] = row
    return out
