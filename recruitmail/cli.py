"""The `recruitmail` command: the one place that knows the api, worker and inbound processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from core.settings import Settings, SettingsError, get_settings, reset_settings
from recruitmail import dev as dev_process


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        click.echo(f"recruitmail: {exc}", err=True)
        sys.exit(2)


def _logging(process: str) -> None:
    from core.logs import setup_logging

    s = _settings()
    setup_logging(json_logs=s.log_json, level=s.log_level, process=process)


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
def main() -> None:
    """Candidate messaging backend for recruiting teams."""


@main.command()
def migrate() -> None:
    """Bring the database to the current schema (idempotent)."""
    from core.db import migrate as run

    s = _settings()
    asyncio.run(run(s.database_url))
    click.echo("database is up to date", err=True)


@main.command()
@click.option("--host", default=None, help="Listen address (default RECRUITMAIL_API_HOST).")
@click.option("--port", default=None, type=int, help="Port (default RECRUITMAIL_API_PORT).")
def api(host: str | None, port: int | None) -> None:
    """Serve GraphQL at /graphql, /healthz, /readyz, /metrics."""
    import uvicorn

    s = _settings()
    _logging("api")
    uvicorn.run("api.app:create_app", factory=True, host=host or s.api_host,
                port=port if port is not None else s.api_port, log_config=None,
                proxy_headers=True, timeout_graceful_shutdown=20,
                # Live updates are small JSON messages sent to many subscribers: compressing
                # each one for each connection (permessage-deflate) cost more CPU than it saved.
                ws_per_message_deflate=False)


@main.command()
def worker() -> None:
    """The arq worker: sends queued messages and runs the sweeper."""
    from worker.settings import make_worker

    _settings()
    _logging("worker")
    w = make_worker()
    w.run()


@main.command()
@click.option("--host", default=None, help="Listen address (default RECRUITMAIL_INBOUND_HOST).")
@click.option("--port", default=None, type=int, help="Port (default RECRUITMAIL_INBOUND_PORT).")
def inbound(host: str | None, port: int | None) -> None:
    """The SMTP gateway for the inbound domain."""
    from inbound.server import serve_forever

    s = _settings()
    _logging("inbound")
    try:
        asyncio.run(serve_forever(host or s.inbound_host,
                                  port if port is not None else s.inbound_port))
    except SettingsError as exc:
        click.echo(f"recruitmail: {exc}", err=True)
        sys.exit(2)


@main.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL the code exports."""
    from schema import export_sdl

    click.echo(export_sdl(), nl=False)


# --- admin --------------------------------------------------------------------------------


@main.group()
def admin() -> None:
    """Create companies, employees and API tokens."""


def _admin_run(fn: Callable[[], Awaitable[dict[str, str]]]) -> None:
    from core.errors import InputError

    _settings()
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


# --- dev ----------------------------------------------------------------------------------


@main.command()
@click.option("--catcher-port", default=1025, type=int, help="Port of the local mail catcher.")
def dev(catcher_port: int) -> None:
    """Everything on embedded defaults: api, worker, inbound, a mail catcher, a token."""
    s = _settings()
    var = Path(s.var_dir)
    var.mkdir(parents=True, exist_ok=True)
    redis_server = None
    if "RECRUITMAIL_REDIS_URL" not in os.environ:
        redis_server = dev_process.embedded_redis(var)
        os.environ["RECRUITMAIL_REDIS_URL"] = f"unix://{redis_server.socket_file}"
    if "RECRUITMAIL_SMTP_URL" not in os.environ:
        os.environ["RECRUITMAIL_SMTP_URL"] = f"smtp://127.0.0.1:{catcher_port}"
    os.environ.setdefault("RECRUITMAIL_LOG_JSON", "false")
    # A local SPA dev server (another port = another origin) may call the dev API.
    os.environ.setdefault("RECRUITMAIL_ALLOWED_ORIGINS", "*")
    reset_settings()
    s = _settings()
    _logging("dev")
    try:
        asyncio.run(dev_process.run(s, catcher_port))
    except KeyboardInterrupt:
        pass
    finally:
        if redis_server is not None:
            redis_server.shutdown()


if __name__ == "__main__":
    main()
