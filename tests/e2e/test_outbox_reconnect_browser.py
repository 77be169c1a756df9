"""The /outbox page in headless Chromium reconnecting by itself when the server goes away
and comes back: what happened meanwhile is read again and live updates flow again."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.bulk_graphql import _applicants
from tests.support.outbox_page import LIVE_SCRIPT, SCREENSHOTS, SEND, Browser


class RestartableServer:
    """uvicorn serving create_app() on one port, stopped and started again by the test."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.server: Any = None
        self.task: asyncio.Task[None] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        import uvicorn

        from api.app import create_app

        config = uvicorn.Config(create_app(manage_db=False), host="127.0.0.1", port=self.port,
                                lifespan="on", log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(), name="uvicorn")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not self.server.started:
            if self.task.done() or loop.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.task is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 15)
            self.task = None


@pytest.fixture
async def restartable(db: Any) -> AsyncIterator[RestartableServer]:
    srv = RestartableServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_outbox_reconnects_by_itself(browser_ready: None, restartable: RestartableServer,
                                           api: Any, tenant: Any) -> None:
    people = await _applicants(tenant, 2, first="Conn", email="conn")
    browser = await Browser.start(LIVE_SCRIPT, {
        "BASE_URL": restartable.http_url, "TOKEN": tenant.token, "SHOTS": str(SCREENSHOTS)})
    try:
        await browser.expect("ready")
        await restartable.stop()
        down = await browser.ask("wait", selector='#connection[data-state="offline"]')
        assert "connection was lost" in down["text"] and "Reconnecting in" in down["text"]
        # Meanwhile a message is queued (through the API in-process; no worker here).
        sent = (await api.gql(tenant, SEND, input={
            "candidateId": people[0].cand_gid, "subject": "While away", "body": "Hi"}))
        assert sent["sendMessage"]["errors"] == []
        await restartable.start()
        await browser.ask("wait", selector='#connection[data-state="live"]')
        # What happened while away is read again after the reconnect ...
        await browser.ask("count", status="QUEUED", count=1)
        # ... and live updates flow again on the new connection.
        sent = (await api.gql(tenant, SEND, input={
            "candidateId": people[1].cand_gid, "subject": "After", "body": "Hi"}))
        assert sent["sendMessage"]["errors"] == []
        await browser.ask("count", status="QUEUED", count=2)
        final = await browser.finish()
    finally:
        await browser.kill()
    assert "error" not in final, final["error"]
    assert final["blocked"] == [] and final["pageErrors"] == []
    assert final["loads"] == 1
    assert len(final["sockets"]) >= 2  # it opened a new websocket by itself
    # The only console errors are the browser's own notes on refused connections.
    unexpected = [e for e in final["consoleErrors"]
                  if "WebSocket" not in e and "ERR_CONNECTION_REFUSED" not in e]
    assert unexpected == [], final["consoleErrors"]
