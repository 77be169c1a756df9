"""The `recruitmail` command: the one place that knows the api, worker and inbound processes."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from pathlib import Path

import click

from core.settings import SettingsError, reset_settings
from recruitmail import dev as dev_process
from recruitmail.admin import admin
from recruitmail.config import load_settings


def _logging(process: str) -> None:
    from core.logs import setup_logging

    s = load_settings()
    setup_logging(json_logs=s.log_json, level=s.log_level, process=process)


@click.group()
def main() -> None:
    """Candidate messaging backend for recruiting teams."""


main.add_command(admin)


@main.command()
def migrate() -> None:
    """Bring the database to the current schema (idempotent)."""
    from core.db import migrate as run

    s = load_settings()
    asyncio.run(run(s.database_url))
    click.echo("database is up to date", err=True)


def _tune_gc() -> None:
    """A long-running service's garbage collection: what was loaded at start-up is never
    scanned again, and the youngest generation is collected every 50,000 allocations
    instead of 700 (a 10,000-mail bulk builds hundreds of thousands of short-lived
    objects; with the default, collections were a tenth of the mutation's time)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _fast_loop() -> None:
    """The worker's event loop: uvloop where it is installed (uvicorn's `standard` extra, on
    which the api runs already), as uvicorn's `loop="auto"` chooses; asyncio's own
    elsewhere. A bulk is a stream of small reads and writes (SMTP, PostgreSQL, Redis) and
    of callbacks between them: about 13 callbacks a mail, and uvloop took ~6 % off the
    worker's CPU a mail (bench/bulk.py's (b) in alternating runs)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop(uvloop.new_event_loop())


@main.command()
@click.option("--host", default=None, help="Listen address (default RECRUITMAIL_API_HOST).")
@click.option("--port", default=None, type=int, help="Port (default RECRUITMAIL_API_PORT).")
def api(host: str | None, port: int | None) -> None:
    """Serve GraphQL at /graphql, /healthz, /readyz, /metrics."""
    import uvicorn

    s = load_settings()
    _logging("api")
    _tune_gc()
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

    load_settings()
    _logging("worker")
    _tune_gc()
    _fast_loop()
    w = make_worker()
    w.run()


@main.command()
@click.option("--host", default=None, help="Listen address (default RECRUITMAIL_INBOUND_HOST).")
@click.option("--port", default=None, type=int, help="Port (default RECRUITMAIL_INBOUND_PORT).")
def inbound(host: str | None, port: int | None) -> None:
    """The SMTP gateway for the inbound domain."""
    from inbound.server import serve_forever

    s = load_settings()
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


# --- dev ----------------------------------------------------------------------------------


@main.command()
@click.option("--catcher-port", default=1025, type=int, help="Port of the local mail catcher.")
def dev(catcher_port: int) -> None:
    """Everything on embedded defaults: api, worker, inbound, a mail catcher, a token."""
    s = load_settings()
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
    s = load_settings()
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
