"""API fixtures: GraphQL over httpx on the ASGI app, and real uvicorn for websockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

GRAPHQL_PATH = "/graphql"
WS_PROTOCOL = "graphql-transport-ws"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """GraphQL over HTTP against the in-process ASGI app (no sockets)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, query: str, variables: dict[str, Any] | None = None, *,
                   token: str | None = None, headers: dict[str, str] | None = None
                   ) -> dict[str, Any]:
        """The whole response body (data and errors); asserts HTTP 200."""
        h = dict(headers or {})
        if token is not None:
            h.update(bearer(token))
        r = await self.client.post(GRAPHQL_PATH, json={"query": query,
                                                       "variables": variables or {}},
                                   headers=h)
        assert r.status_code == 200, (r.status_code, r.text)
        body: dict[str, Any] = r.json()
        return body

    async def gql(self, tenant: Any, query: str, **variables: Any) -> dict[str, Any]:
        """`data` of a query run as the tenant's employee; GraphQL errors fail the test."""
        body = await self.post(query, variables, token=tenant.token)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def api(db: Any) -> AsyncIterator[Api]:
    from api.app import create_app

    app = create_app(manage_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client)


class LiveServer:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{GRAPHQL_PATH}"


@pytest.fixture
async def live_server(db: Any) -> AsyncIterator[LiveServer]:
    """Real uvicorn serving create_app() on an ephemeral port, on the test's event loop."""
    import uvicorn

    from api.app import create_app

    config = uvicorn.Config(create_app(manage_db=False), host="127.0.0.1", port=0,
                            lifespan="on", log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="uvicorn")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        if loop.time() > deadline:
            raise RuntimeError("uvicorn did not start in time")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer("127.0.0.1", port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class WsClient:
    """A minimal graphql-transport-ws client over the `websockets` library."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._ids = 0

    @classmethod
    async def connect(cls, url: str, payload: dict[str, Any] | None) -> WsClient:
        """Open and send connection_init; call ack() (or expect a close) next."""
        from websockets.asyncio.client import connect

        conn = await connect(url, subprotocols=[WS_PROTOCOL])  # type: ignore[list-item]
        client = cls(conn)
        init: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            init["payload"] = payload
        await client.send(init)
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(message))

    async def receive(self, wait: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), wait)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def ack(self) -> None:
        message = await self.receive()
        assert message["type"] == "connection_ack", message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._ids += 1
        op_id = str(self._ids)
        await self.send({"id": op_id, "type": "subscribe",
                         "payload": {"query": query, "variables": variables or {}}})
        return op_id

    async def next_data(self, op_id: str, wait: float = 5.0) -> dict[str, Any]:
        """The data of the next `next` message of the operation (pings are answered)."""
        while True:
            message = await self.receive(wait)
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            assert message.get("id") == op_id, message
            assert message["type"] == "next", message
            assert not message["payload"].get("errors"), message["payload"]["errors"]
            data: dict[str, Any] = message["payload"]["data"]
            return data

    async def close(self) -> None:
        await self.conn.close()


async def redis_subscribers(channel: str) -> int:
    """How many Redis subscribers listen on a channel (PUBSUB NUMSUB): one per api process
    with live subscriptions of that company."""
    from core.redis import get_redis

    result = await get_redis().pubsub_numsub(channel)
    return int(result[0][1]) if result else 0


async def subscribers(channel: str) -> int:
    """How many GraphQL subscriptions listen on a company channel: those of the api in this
    process (live_server), or, when there is none here, the Redis subscribers (one per
    api process, which may serve many)."""
    from schema.live import subscriptions

    return subscriptions(channel) or await redis_subscribers(channel)


async def wait_for_subscribers(channel: str, count: int = 1, wait: float = 5.0) -> None:
    """graphql-transport-ws has no "subscribed" ack: wait until Redis sees `count` listeners
    (count=0: until none is left)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (await subscribers(channel) < count) if count else (await subscribers(channel) > 0):
        if loop.time() > deadline:
            raise AssertionError(f"not {count} subscribers on {channel} after {wait}s")
        await asyncio.sleep(0.02)


async def upload(api: Api, query: str, variables: dict[str, Any],
                 files: dict[str, tuple[str, bytes, str]], *, token: str) -> dict[str, Any]:
    """A GraphQL multipart request (spec: operations, map, files); files maps a variable
    path such as "variables.input.file" to (filename, bytes, content type)."""
    mapping = {str(i): [path] for i, path in enumerate(files)}
    parts = {str(i): spec for i, spec in enumerate(files.values())}
    r = await api.client.post(
        GRAPHQL_PATH,
        data={"operations": json.dumps({"query": query, "variables": variables}),
              "map": json.dumps(mapping)},
        files=parts,
        headers={**bearer(token), "GraphQL-Require-Preflight": "1"},
    )
    assert r.status_code == 200, (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    return body
