"""An SPA on another origin calls the API from real headless Chromium (CORS enforced by the
browser, not by us): a query with a bearer token, a multipart upload, the download of the
uploaded document, and a subscription over graphql-transport-ws. A page on an origin that
is not allowed gets nothing: the browser refuses to hand it the answer.

Both servers are real uvicorn on the test's event loop: the API (create_app on the test
database) and a small page server; the allowed origin is the page server's
``http://127.0.0.1:<port>``, and ``http://localhost:<port>`` (the same server under
another name) is the origin that is not allowed.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from core import events
from core.models import Document
from tests.integration.test_graphql_candidates import create_candidate
from tests.integration.test_graphql_messages import send
from tests.support.api import wait_for_subscribers
from tests.support.browser import CHROMIUM_FLAGS, browser_unavailable, chromium_path
from tests.support.paths import NODE_MODULES

pytestmark = pytest.mark.slow

PAGE = "<!doctype html><html><head><title>SPA</title></head><body>an SPA</body></html>"


async def _serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


@pytest.fixture
async def servers(db: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, int]]:
    """(API base URL, page server port); the page's 127.0.0.1 origin is allowed."""
    reason = browser_unavailable()
    if reason:
        pytest.skip(f"headless browser not available: {reason}")
    from api.app import create_app
    from core.settings import reset_settings

    async def page(_: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    page_srv, page_task, page_port = await _serve(Starlette(routes=[Route("/", page)]))
    monkeypatch.setenv("RECRUITMAIL_ALLOWED_ORIGINS", f"http://127.0.0.1:{page_port}")
    reset_settings()
    api_srv, api_task, api_port = await _serve(create_app(manage_db=False))
    try:
        yield f"http://127.0.0.1:{api_port}", page_port
    finally:
        for srv, task in ((api_srv, api_task), (page_srv, page_task)):
            srv.should_exit = True
            await asyncio.wait_for(task, 10)


SCRIPT = r"""
const { chromium } = require("playwright-core");
const readline = require("readline");

const api = process.env.API_URL, token = process.env.TOKEN, candidate = process.env.CANDIDATE;
const say = (o) => console.log(JSON.stringify(o));

async function calls(page) {
  return page.evaluate(async ({ api, token, candidate }) => {
    const out = {};
    const auth = { Authorization: "Bearer " + token };
    const error = (e) => ({ error: String(e && e.name) + ": " + String(e && e.message) });
    try {
      const r = await fetch(api + "/graphql", { method: "POST",
        headers: { ...auth, "Content-Type": "application/json", "X-Request-ID": "spa-1" },
        body: JSON.stringify({ query: "{ viewer { name } company { name } }" }) });
      out.query = { status: r.status, body: await r.json(), requestId: r.headers.get("X-Request-ID") };
    } catch (e) { out.query = error(e); }
    try {
      const form = new FormData();
      form.append("operations", JSON.stringify({
        query: "mutation($f: Upload!, $c: ID!) { uploadDocument(input: {candidateId: $c, file: $f}) " +
               "{ document { id filename downloadUrl } errors { code message } } }",
        variables: { f: null, c: candidate } }));
      form.append("map", JSON.stringify({ "0": ["variables.f"] }));
      form.append("0", new Blob(["Curriculum vitae of Nina"], { type: "text/plain" }), "cv.txt");
      const r = await fetch(api + "/graphql", { method: "POST",
        headers: { ...auth, "GraphQL-Require-Preflight": "1" }, body: form });
      out.upload = { status: r.status, body: await r.json() };
      const doc = out.upload.body.data && out.upload.body.data.uploadDocument.document;
      if (doc) {
        const d = await fetch(api + doc.downloadUrl, { headers: auth });
        out.download = { status: d.status, text: await d.text(),
                         disposition: d.headers.get("Content-Disposition") };
      }
    } catch (e) { out.upload = error(e); }
    return out;
  }, { api, token, candidate });
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH,
                                          headless: true, args: JSON.parse(process.env.CHROMIUM_FLAGS) });
  const result = {};
  try {
    // No context.route(): with interception on, playwright answers CORS preflights itself,
    // and the point here is Chromium's own CORS checks. Every URL is loopback anyway.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(process.env.ALLOWED_PAGE);
    result.origin = await page.evaluate(() => location.origin);
    Object.assign(result, await calls(page));

    // A subscription: graphql-transport-ws from the page, token in connection_init.
    await page.evaluate(({ api, token }) => new Promise((resolve, reject) => {
      window.events = []; window.wsErrors = [];
      const ws = new WebSocket(api.replace("http", "ws") + "/graphql", "graphql-transport-ws");
      ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init",
                                                 payload: { Authorization: "Bearer " + token } }));
      ws.onerror = () => reject(new Error("websocket error"));
      ws.onclose = (e) => window.wsErrors.push("closed " + e.code);
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        if (msg.type === "connection_ack") {
          ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: {
            query: "subscription { messageStatusChanged { status message { subject } } }" } }));
          resolve();
        } else if (msg.type === "next") {
          window.events.push(msg.payload);
        }
      };
      setTimeout(() => reject(new Error("no connection_ack")), 10000);
    }), { api, token });
    say({ ready: true });
    // The test sends a message once the subscription is registered.
    await page.waitForFunction(() => window.events.length > 0, null, { timeout: 15000 });
    result.events = await page.evaluate(() => window.events);

    // Another origin (the same page server under another name): the browser blocks it all.
    const other = await context.newPage();
    await other.goto(process.env.OTHER_PAGE);
    result.otherOrigin = await other.evaluate(() => location.origin);
    result.other = await calls(other);
    result.otherWs = await other.evaluate((api) => new Promise((resolve) => {
      const ws = new WebSocket(api.replace("http", "ws") + "/graphql", "graphql-transport-ws");
      ws.onopen = () => { ws.close(); resolve("open"); };
      ws.onerror = () => resolve("refused");
    }), api);
  } catch (e) {
    result.failure = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  say(result);
})();
"""


async def test_an_spa_on_another_origin_uses_the_api(servers: tuple[str, int], api: Any,
                                                     tenant: Any, tmp_path: Any) -> None:
    api_url, page_port = servers
    cand = await create_candidate(api, tenant)
    script = tmp_path / "spa.cjs"
    script.write_text(SCRIPT)
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES), "CHROMIUM_PATH": chromium_path() or "",
           "CHROMIUM_FLAGS": json.dumps(CHROMIUM_FLAGS), "API_URL": api_url,
           "TOKEN": tenant.token, "CANDIDATE": cand["id"],
           "ALLOWED_PAGE": f"http://127.0.0.1:{page_port}/",
           "OTHER_PAGE": f"http://localhost:{page_port}/"}
    proc = await asyncio.create_subprocess_exec("node", str(script), env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    lines: list[dict[str, Any]] = []
    try:
        while True:
            raw = await asyncio.wait_for(proc.stdout.readline(), 90)
            if not raw:
                break
            line = json.loads(raw)
            lines.append(line)
            if line.get("ready"):
                await wait_for_subscribers(events.company_channel(tenant.company.id))
                assert (await send(api, tenant, cand["id"], subject="Hello from the SPA test"))[
                    "errors"] == []
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert lines and lines[0] == {"ready": True}, (lines, stderr[-2000:])
    result = lines[-1]
    assert "failure" not in result, (result, stderr[-2000:])

    assert result["origin"] == f"http://127.0.0.1:{page_port}"
    assert result["query"]["status"] == 200
    assert result["query"]["body"]["data"]["viewer"]["name"] == "Ada Admin"
    assert result["query"]["requestId"] == "spa-1"  # an exposed header the page may read
    upload = result["upload"]["body"]["data"]["uploadDocument"]
    assert upload["errors"] == [] and upload["document"]["filename"] == "cv.txt"
    assert result["download"]["status"] == 200
    assert result["download"]["text"] == "Curriculum vitae of Nina"
    assert "cv.txt" in result["download"]["disposition"]
    assert result["events"][0]["data"]["messageStatusChanged"]["message"]["subject"] == \
        "Hello from the SPA test"

    assert result["otherOrigin"] == f"http://localhost:{page_port}"
    other = result["other"]
    assert other["query"]["error"].startswith("TypeError"), other
    assert other["upload"]["error"].startswith("TypeError"), other
    assert result["otherWs"] == "refused"
    # The refused preflight kept the upload from the server: still one document.
    docs = await Document.filter(company_id=tenant.company.id).values("filename", "created_at")
    assert len(docs) == 1, docs
