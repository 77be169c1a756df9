"""`recruitmail admin`: creating companies, employees and API tokens from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import click

from recruitmail.config import load_settings


def _with_db(fn: Callable[[], Awaitable[Any]]) -> Any:
    from core.db import close_db, init_db

    async def run() -> Any:
        ctx = await init_db()
        try:
            return await fn()
        finally:
            await close_db(ctx)

    return asyncio.run(run())


def _uuid_arg(value: str, type_name: str) -> uuid.UUID:
    from core.ids import from_global_id

    try:
        return uuid.UUID(value)
    except ValueError:
        parsed = from_global_id(value)
        if parsed and parsed[0] == type_name:
            return parsed[1]
    raise click.BadParameter(f"{value!r} is not a {type_name} id")


@click.group()
def admin() -> None:
    """Create companies, employees and API tokens."""


def _admin_run(fn: Callable[[], Awaitable[dict[str, str]]]) -> None:
    from core.errors import InputError

    load_settings()
    try:
        out = _with_db(fn)
    except InputError as exc:
        click.echo(f"recruitmail: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(out))


@admin.command("create-company")
@click.argument("name")
@click.option("--admin-name", required=True)
@click.option("--admin-email", required=True)
@click.option("--templates/--no-templates", default=True, help="The email templates add-on.")
@click.option("--language", default="en", show_default=True, type=click.Choice(["en", "nl", "de"]),
              help="Language of the starter rejection reasons and of the starter templates' "
                   "main text (the other languages become translations).")
def create_company(name: str, admin_name: str, admin_email: str, templates: bool,
                   language: str) -> None:
    """Create a company and its first employee, with the starter rejection reasons and (with
    the templates add-on) the starter templates; prints {company_id, employee_id, token}."""
    from core.ids import to_global_id
    from core.services.admin import create_company as create

    async def run() -> dict[str, str]:
        company, employee, token = await create(
            name=name, admin_name=admin_name, admin_email=admin_email, templates=templates,
            language=language)
        return {"company_id": to_global_id("Company", company.id),
                "employee_id": to_global_id("Employee", employee.id), "token": token}

    _admin_run(run)


@admin.command("create-employee")
@click.option("--company-id", required=True)
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--admin/--no-admin", "is_admin", default=False)
def create_employee(company_id: str, name: str, email: str, is_admin: bool) -> None:
    """Create an employee; prints {employee_id, token}."""
    from core.ids import to_global_id
    from core.services.admin import create_employee as create

    cid = _uuid_arg(company_id, "Company")

    async def run() -> dict[str, str]:
        employee, token = await create(company_id=cid, name=name, email=email, is_admin=is_admin)
        return {"employee_id": to_global_id("Employee", employee.id), "token": token}

    _admin_run(run)


@admin.command("create-token")
@click.option("--employee-id", required=True)
def create_token(employee_id: str) -> None:
    """A new API token for an employee; prints {token}."""
    from core.services.admin import create_token as create

    eid = _uuid_arg(employee_id, "Employee")

    async def run() -> dict[str, str]:
        return {"token": await create(employee_id=eid)}

    _admin_run(run)
