"""Third-party clients against real uvicorn: Python's gql 4 (HTTP query and mutation,
graphql-transport-ws subscription, multipart upload) and the npm graphql-ws client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.file_upload import FileVar
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from core import events
from core.models import Document
from tests.integration.test_graphql_candidates import create_candidate
from tests.integration.test_graphql_messages import send
from tests.support.api import bearer, wait_for_subscribers
from tests.support.paths import RUN

WS_SUB = str(RUN)

CREATE_CANDIDATE = """mutation($input: CreateCandidateInput!) {
  createCandidate(input: $input) { candidate { id fullName email } errors { code field } } }"""
SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id status } errors { code field message } } }"""
MESSAGE = """query($id: ID!) { message(id: $id) { status events { status } } }"""
STATUS = """subscription($c: ID) { messageStatusChanged(candidateId: $c) {
  message { id } previousStatus status } }"""
UPLOAD = """mutation($input: UploadDocumentInput!) {
  uploadDocument(input: $input) { document { id filename size downloadUrl }
  errors { code field message } } }"""


def _http(live_server: Any, token: str, **headers: str) -> HTTPXAsyncTransport:
    return HTTPXAsyncTransport(url=f"{live_server.http_url}/graphql",
                               headers={**bearer(token), **headers}, timeout=20)


async def _gql_candidate(session: Any, email: str = "nina@example.org") -> str:
    out = (await session.execute(GraphQLRequest(CREATE_CANDIDATE, variable_values={
        "input": {"firstName": "Nina", "lastName": "de Vries", "email": email}})))
    assert out["createCandidate"]["errors"] == []
    cid: str = out["createCandidate"]["candidate"]["id"]
    return cid


async def test_gql_http_query_and_mutation(live_server, tenant):
    async with Client(transport=_http(live_server, tenant.token)) as session:
        viewer = await session.execute(GraphQLRequest("{ viewer { name } company { name } }"))
        assert viewer == {"viewer": {"name": "Ada Admin"}, "company": {"name": "Acme Recruiting"}}
        out = await session.execute(GraphQLRequest(CREATE_CANDIDATE, variable_values={
            "input": {"firstName": "Nina", "lastName": "de Vries", "email": "nina@example.org"}}))
        created = out["createCandidate"]
        assert created["errors"] == []
        assert (created["candidate"]["fullName"], created["candidate"]["email"]) == (
            "Nina de Vries", "nina@example.org")
    # Without the token the same query is answered, but with an error and no viewer.
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{live_server.http_url}/graphql",
                              json={"query": "{ viewer { name } }"})
    body = r.json()
    assert body.get("errors") and not (body.get("data") or {}).get("viewer"), body


async def test_gql_websocket_subscription(live_server, tenant, sink, run_worker):
    assert WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL == "graphql-transport-ws"
    async with Client(transport=_http(live_server, tenant.token)) as http:
        cid = await _gql_candidate(http)
        ws = WebsocketsTransport(url=live_server.ws_url,
                                 subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
                                 init_payload={"Authorization": f"Bearer {tenant.token}"})
        seen: list[dict[str, Any]] = []
        async with Client(transport=ws) as session:
            assert ws.subprotocol == "graphql-transport-ws"

            async def listen() -> None:
                request = GraphQLRequest(STATUS, variable_values={"c": cid})
                async for result in session.subscribe(request):
                    seen.append(result["messageStatusChanged"])
                    if len(seen) == 3:
                        break

            task = asyncio.create_task(listen())
            try:
                await wait_for_subscribers(events.company_channel(tenant.company.id))
                out = await http.execute(GraphQLRequest(SEND, variable_values={"input": {
                    "candidateId": cid, "subject": "Hello from gql", "body": "Welcome"}}))
                assert out["sendMessage"]["errors"] == []
                msg_id = out["sendMessage"]["message"]["id"]
                await run_worker()
                await asyncio.wait_for(task, 15)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        assert [(s["previousStatus"], s["status"]) for s in seen] == [
            (None, "QUEUED"), ("QUEUED", "SENDING"), ("SENDING", "SENT")]
        assert {s["message"]["id"] for s in seen} == {msg_id}
        [mail] = await sink.wait_for(1)
        assert mail.message["Subject"] == "Hello from gql"
        data = await http.execute(GraphQLRequest(MESSAGE, variable_values={"id": msg_id}))
        assert data["message"]["status"] == "SENT"
    # Leaving the subscription (and the socket) ends the Redis subscription.
    await wait_for_subscribers(events.company_channel(tenant.company.id), 0, wait=5)


async def test_gql_multipart_upload(live_server, tenant):
    content = os.urandom(50_000) + b"\r\n.\r\n"
    async with Client(transport=_http(live_server, tenant.token)) as plain:
        cid = await _gql_candidate(plain)
        # gql's multipart request without the CSRF preflight header is refused (an HTTP 400
        # whose GraphQL error body gql raises as a query error).
        with pytest.raises(TransportQueryError) as info:
            await plain.execute(
                GraphQLRequest(UPLOAD, variable_values={"input": {"candidateId": cid, "file": FileVar(
                    io.BytesIO(b"x"), filename="x.txt", content_type="text/plain")}}),
                upload_files=True)
        assert info.value.errors and "Preflight" in info.value.errors[0]["message"]
        assert info.value.data is None
    assert await Document.all().count() == 0

    transport = _http(live_server, tenant.token, **{"GraphQL-Require-Preflight": "1"})
    async with Client(transport=transport) as session:
        out = await session.execute(
            GraphQLRequest(UPLOAD, variable_values={"input": {"candidateId": cid, "file": FileVar(
                io.BytesIO(content), filename="cv.pdf", content_type="application/pdf")}}),
            upload_files=True)
    result = out["uploadDocument"]
    assert result["errors"] == []
    doc = result["document"]
    assert (doc["filename"], doc["size"]) == ("cv.pdf", len(content))
    # The download URL's base is the configured public URL; fetch its path from this server.
    path = urlsplit(doc["downloadUrl"])
    async with httpx.AsyncClient(base_url=live_server.http_url) as client:
        r = await client.get(path.path + (f"?{path.query}" if path.query else ""),
                             headers=bearer(tenant.token))
    assert r.status_code == 200 and r.content == content


# --- the npm graphql-ws client (ws-sub.js) ---------------------------------------------------


def _need_node() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the npm graphql-ws client cannot run")


async def _ws_sub(url: str, n: int, query: str, variables: dict[str, Any], timeout: float,
                  auth: str | None) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "AUTH"}
    if auth is not None:
        env["AUTH"] = auth
    return await asyncio.create_subprocess_exec(
        WS_SUB, "ws-sub.js", url, str(n), query, json.dumps(variables), str(timeout),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def test_npm_graphql_ws_client(api, live_server, tenant, sink, run_worker):
    _need_node()
    cand = await create_candidate(api, tenant)
    proc = await _ws_sub(live_server.ws_url, 3, "subscription { messageStatusChanged { status } }",
                         {}, 30, f"Bearer {tenant.token}")
    assert proc.stdout is not None and proc.stderr is not None
    try:
        # First use of the tool may install its node packages (npm); allow for that.
        first = await asyncio.wait_for(proc.stdout.readline(), 120)
        if first.strip() != b"ready":
            err = await asyncio.wait_for(proc.stderr.read(), 10)
            raise AssertionError(f"ws-sub.js did not print ready: {first!r} {err!r}")
        await wait_for_subscribers(events.company_channel(tenant.company.id))
        out = await send(api, tenant, cand["id"])
        assert out["errors"] == []
        await run_worker()
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await _stop(proc)
    assert proc.returncode == 0, (rest, err)
    lines = [json.loads(line) for line in rest.decode().splitlines() if line.strip()]
    assert lines == [{"messageStatusChanged": {"status": s}} for s in ("QUEUED", "SENDING", "SENT")]
    await sink.wait_for(1)
    await wait_for_subscribers(events.company_channel(tenant.company.id), 0, wait=5)


@pytest.mark.parametrize("auth", [None, "Bearer rm_wrong"], ids=["no-auth", "bad-token"])
async def test_npm_graphql_ws_client_unauthenticated_is_refused(live_server, tenant, auth):
    _need_node()
    proc = await _ws_sub(live_server.ws_url, 1, "subscription { messageStatusChanged { status } }",
                         {}, 20, auth)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await _stop(proc)
    assert proc.returncode != 0
    assert b"ready" not in out.split()
    assert b"timeout" not in err, err  # refused by the server, not left waiting
    assert b"4403" in err or b"Forbidden" in err, err
    assert await _subscribers(tenant) == 0


async def _subscribers(tenant: Any) -> int:
    from tests.support.api import subscribers

    return await subscribers(events.company_channel(tenant.company.id))
