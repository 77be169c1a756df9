"""The /outbox page in a real headless Chromium, on the real product: uvicorn serving
create_app(), the arq worker running on the same loop, the aiosmtpd sink as the relay,
real Redis and the database of the run (SQLite and PostgreSQL).

Every request to a host other than 127.0.0.1 is blocked and recorded. The browser is a
Node script (playwright-core, see tests/support/browser.py) that this test drives step by
step over its stdin/stdout: the test starts a bulk through the API, makes the sink refuse
and accept, and the script reports what the page shows. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.test_calendar_roundtrip import (
    APPLY,
    INVITE,
    POSITION,
    SCHEDULE,
    SETUP,
    _calendar,
    outlook_reply,
)
from tests.integration.test_graphql_bulk import _applicants
from tests.support.browser import (
    CHROMIUM_FLAGS,
    browser_unavailable,
    chromium_path,
    run_node_script,
)
from tests.support.inbound import smtp_send
from tests.support.paths import NODE_MODULES

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
STEP_TIMEOUT = 90.0

SEND_BULK = """
mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) { bulkOperation { id total createdAt }
                                  errors { code message } } }"""
SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id status } errors { code message } } }"""
MESSAGE = "query($id: ID!) { message(id: $id) { status error attempts } }"

# Shared by both scripts: launch, block every non-local request, collect errors.
PRELUDE = r"""
const { chromium } = require("playwright-core");

function say(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }

async function open(out, viewport, extra) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH, headless: true,
    args: JSON.parse(process.env.CHROMIUM_FLAGS),
  });
  const context = await browser.newContext(Object.assign({ viewport }, extra || {}));
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "data:" || url.hostname === "127.0.0.1") return route.continue();
    out.blocked.push(url.href);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") out.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  page.on("load", () => { out.loads += 1; });
  page.on("websocket", (ws) => { out.sockets.push(ws.url()); });
  page.on("request", (r) => {
    if (new URL(r.url()).pathname === "/graphql") out.graphqlRequests += 1;
  });
  return { browser, context, page };
}
"""

LIVE_SCRIPT = PRELUDE + r"""
const readline = require("readline");
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function command() {
  const { value, done } = await lines.next();
  if (done) throw new Error("stdin closed");
  return JSON.parse(value);
}

const T = 60000;
const handlers = {
  // The bulk's element must reach data-sent = total without a reload.
  async bulk(page, cmd) {
    const sel = `[data-bulk-operation-id="${cmd.id}"]`;
    await page.waitForSelector(sel, { timeout: T });
    await page.evaluate((s) => {
      const el = document.querySelector(s);
      window.__seen = [el.getAttribute("data-sent")];
      new MutationObserver(() => window.__seen.push(el.getAttribute("data-sent")))
        .observe(el, { attributes: true, attributeFilter: ["data-sent"] });
    }, sel);
    await page.waitForSelector(`${sel}[data-sent="${cmd.total}"]`, { timeout: T });
    await page.waitForSelector(`${sel}[data-state="COMPLETED"]`, { timeout: T });
    const el = await page.$(sel);
    return {
      sent: await el.getAttribute("data-sent"), failed: await el.getAttribute("data-failed"),
      total: await el.getAttribute("data-total"), state: await el.getAttribute("data-state"),
      seen: await page.evaluate(() => window.__seen),
      bar: await el.$eval("[role=progressbar]", (b) => ({
        now: b.getAttribute("aria-valuenow"), max: b.getAttribute("aria-valuemax"),
        text: b.getAttribute("aria-valuetext") })),
      text: await el.innerText(),
    };
  },
  async message(page, cmd) {
    const sel = `[data-message-id="${cmd.id}"][data-status="${cmd.status}"]`;
    await page.waitForSelector(sel, { timeout: T });
    const el = await page.$(sel);
    return { text: await el.innerText(),
             buttons: await el.$$eval("button", (bs) => bs.map((b) => b.textContent)) };
  },
  async retry(page, cmd) {
    const row = page.locator(`[data-message-id="${cmd.id}"]`);
    const button = row.locator("button", { hasText: "Retry" });
    await button.focus();
    await page.keyboard.press("Enter");   // keyboard, like a screen-reader user
    await page.waitForSelector(`[data-message-id="${cmd.id}"][data-status="SENT"]`,
                               { timeout: T });
    await page.waitForFunction(() =>
      (document.getElementById("announcer").textContent || "").includes("Sent"),
      null, { timeout: T });
    return {
      text: await row.innerText(),
      buttons: await row.locator("button").count(),
      focusInRow: await page.evaluate((id) =>
        Boolean(document.activeElement &&
                document.activeElement.closest(`[data-message-id="${id}"]`)), cmd.id),
      announced: await page.evaluate(() => document.getElementById("announcer").textContent),
    };
  },
  // Wait for a selector; its text and buttons.
  async wait(page, cmd) {
    await page.waitForSelector(cmd.selector, { timeout: T });
    const el = await page.$(cmd.selector);
    return { text: await el.innerText(),
             buttons: await el.$$eval("button", (bs) => bs.map((b) => b.textContent)) };
  },
  // Click the button named cmd.button inside cmd.selector, then wait for cmd.until.
  async press(page, cmd) {
    await page.locator(cmd.selector).getByRole("button", { name: cmd.button }).click();
    await page.waitForSelector(cmd.until, { timeout: T });
    return { text: await page.innerText(cmd.until) };
  },
  async count(page, cmd) {
    await page.waitForSelector(
      `[data-count-status="${cmd.status}"][data-count="${cmd.count}"]`, { timeout: T });
    return page.$$eval("[data-count-status]", (els) => Object.fromEntries(
      els.map((e) => [e.getAttribute("data-count-status"), Number(e.getAttribute("data-count"))])));
  },
};

(async () => {
  const out = { blocked: [], consoleErrors: [], pageErrors: [], loads: 0, sockets: [],
                graphqlRequests: 0 };
  const { browser, context, page } = await open(out, { width: 1280, height: 900 },
                                                { timezoneId: "Europe/Amsterdam", locale: "en-GB" });
  try {
    await page.goto(process.env.BASE_URL + "/outbox#token=" +
                    encodeURIComponent(process.env.TOKEN), { waitUntil: "load" });
    await page.waitForSelector('#connection[data-state="live"]', { timeout: T });
    out.url = page.url();
    out.stored = await page.evaluate(() => sessionStorage.getItem("recruitmail.outbox.token"));
    out.title = await page.title();
    out.who = await page.innerText("#who");
    out.footer = await page.innerText("footer");
    out.landmarks = await page.evaluate(() => ({
      main: document.querySelectorAll("main").length,
      live: document.querySelectorAll("[aria-live]").length,
      h1: document.activeElement && document.activeElement.tagName,
      sections: Array.from(document.querySelectorAll("section[aria-labelledby]"))
        .map((s) => document.getElementById(s.getAttribute("aria-labelledby")).textContent),
    }));
    say({ step: "ready" });
    for (;;) {
      const cmd = await command();
      if (cmd.cmd === "done") break;
      try {
        say({ step: cmd.cmd, result: await handlers[cmd.cmd](page, cmd) });
      } catch (e) {
        await page.screenshot({ path: process.env.SHOTS + "/outbox-failed.png",
                                fullPage: true }).catch(() => null);
        say({ step: cmd.cmd, error: String((e && e.stack) || e),
              html: (await page.content()).slice(0, 20000) });
      }
    }
    await page.screenshot({ path: process.env.SHOTS + "/outbox.png", fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    out.phoneOverflow = await page.evaluate(() =>
      document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await page.screenshot({ path: process.env.SHOTS + "/outbox-phone.png", fullPage: true });
  } catch (e) {
    out.error = String((e && e.stack) || e);
    await page.screenshot({ path: process.env.SHOTS + "/outbox-failed.png" }).catch(() => null);
  } finally {
    await browser.close();
  }
  say({ final: out });
  process.exit(0);  // the stdin reader would keep node alive
})().catch((e) => { console.error(String((e && e.stack) || e)); process.exit(1); });
"""

SIGN_IN_SCRIPT = PRELUDE + r"""
(async () => {
  const out = { blocked: [], consoleErrors: [], pageErrors: [], loads: 0, sockets: [],
                graphqlRequests: 0 };
  const { browser, page } = await open(out, { width: 800, height: 800 });
  try {
    await page.goto(process.env.BASE_URL + "/outbox#token=rm_this-is-not-a-token",
                    { waitUntil: "load" });
    await page.waitForSelector("#signin-error:not([hidden])", { timeout: 30000 });
    out.url = page.url();
    // Nothing more may happen on its own: no retry loop, no websocket.
    await page.waitForTimeout(3000);
    out.wrong = {
      error: await page.innerText("#signin-error"),
      role: await page.getAttribute("#signin-error", "role"),
      requests: out.graphqlRequests, sockets: out.sockets.length,
      stored: await page.evaluate(() => sessionStorage.getItem("recruitmail.outbox.token")),
      invalid: await page.getAttribute("#token", "aria-invalid"),
      focused: await page.evaluate(() => document.activeElement && document.activeElement.id),
    };
    await page.screenshot({ path: process.env.SHOTS + "/outbox-wrong-token.png" });
    // An empty form is refused in the page.
    await page.click("button[type=submit]");
    out.empty = await page.innerText("#signin-error");
    // Paste the right token into the labelled field.
    await page.getByLabel("API token").fill("Bearer " + process.env.TOKEN);
    await page.keyboard.press("Enter");
    await page.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
    out.signedIn = {
      stored: await page.evaluate(() => sessionStorage.getItem("recruitmail.outbox.token")),
      who: await page.innerText("#who"),
    };
    // A reload signs in from sessionStorage.
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
    // Sign out forgets the token.
    await page.click("#signout");
    await page.waitForSelector("#token", { timeout: 10000 });
    out.signedOut = await page.evaluate(() => sessionStorage.getItem("recruitmail.outbox.token"));
  } catch (e) {
    out.error = String((e && e.stack) || e);
    await page.screenshot({ path: process.env.SHOTS + "/outbox-signin-failed.png" })
      .catch(() => null);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String((e && e.stack) || e)); process.exit(1); });
"""


@pytest.fixture(scope="module")
def browser_ready() -> None:
    reason = browser_unavailable()
    if reason:
        pytest.skip(f"headless browser not available: {reason}")


@pytest.fixture
async def live_worker(db: Any) -> AsyncIterator[None]:
    """The real arq worker, running (not in burst mode) on the test's event loop."""
    from worker.settings import make_worker

    worker = make_worker(handle_signals=False, ctx={"external_db": True}, cron_jobs=[],
                         poll_delay=0.05)
    task = asyncio.create_task(worker.async_run(), name="worker")
    try:
        yield
    finally:
        await worker.close()
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)


class Browser:
    """A Node script driven line by line: it says {"step": …}, we answer with commands."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = b""
        self.drain = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = await self.proc.stderr.read()

    @classmethod
    async def start(cls, script: str, env: dict[str, str]) -> Browser:
        folder = Path(tempfile.mkdtemp(prefix="recruitmail-outbox-"))
        path = folder / "outbox-test.cjs"
        path.write_text(script)
        full = {**os.environ, **env, "NODE_PATH": str(NODE_MODULES),
                "CHROMIUM_PATH": chromium_path() or "",
                "CHROMIUM_FLAGS": json.dumps(CHROMIUM_FLAGS)}
        proc = await asyncio.create_subprocess_exec(
            "node", str(path), env=full, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=2**22)
        return cls(proc)

    async def expect(self, step: str, timeout: float = STEP_TIMEOUT) -> Any:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                await self.drain
                raise AssertionError(f"browser script ended before {step!r}:\n"
                                     f"{self.stderr.decode()[-3000:]}")
            if not line.strip().startswith(b"{"):
                continue
            said = json.loads(line)
            if said.get("step") == step:
                assert "error" not in said, f"{said['error']}\n{said.get('html', '')[:6000]}"
                return said.get("result")
            if "final" in said:
                raise AssertionError(f"browser script finished before {step!r}: {said}")

    async def ask(self, cmd: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.expect(cmd)

    async def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b'{"cmd": "done"}\n')
        await self.proc.stdin.drain()
        self.proc.stdin.close()
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), STEP_TIMEOUT)
            if not line:
                await self.drain
                raise AssertionError(f"no final report:\n{self.stderr.decode()[-3000:]}")
            if line.strip().startswith(b"{") and "final" in (said := json.loads(line)):
                await asyncio.wait_for(self.proc.wait(), 30)
                final: dict[str, Any] = said["final"]
                return final

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.drain.cancel()


async def _gql(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    r = await client.post("/graphql", json={"query": query, "variables": variables},
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body.get("errors"), body
    return body["data"]


def _assert_clean(out: dict[str, Any]) -> None:
    assert "error" not in out, out["error"]
    assert out["blocked"] == [], f"the page tried to leave the host: {out['blocked']}"
    assert out["pageErrors"] == [], out["pageErrors"]
    assert out["consoleErrors"] == [], out["consoleErrors"]


async def test_outbox_live_bulk_failure_and_retry(browser_ready: None, sink: Any,
                                                  live_server: Any, live_worker: None,
                                                  tenant: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    people = await _applicants(tenant, 51, first="Bulk", email="bulk")
    refused = people[50]
    browser = await Browser.start(LIVE_SCRIPT, {
        "BASE_URL": live_server.http_url, "TOKEN": tenant.token, "SHOTS": str(SCREENSHOTS)})
    try:
        await browser.expect("ready")
        async with httpx.AsyncClient(base_url=live_server.http_url, timeout=30) as client:
            # A bulk of 50, started through the API while the page is open.
            out = (await _gql(client, tenant.token, SEND_BULK, input={
                "applicationIds": [p.app_gid for p in people[:50]],
                "subject": "News for {{ candidate.first_name }}",
                "body": "Hello {{ candidate.first_name }}, there is news.",
            }))["sendBulkEmail"]
            assert out["errors"] == []
            bulk = await browser.ask("bulk", id=out["bulkOperation"]["id"], total=50)
            assert (bulk["sent"], bulk["failed"], bulk["total"]) == ("50", "0", "50")
            assert bulk["state"] == "COMPLETED"
            assert bulk["bar"] == {"now": "50", "max": "50", "text": "50 sent, 0 failed of 50"}
            assert "50 sent, 0 failed of 50" in bulk["text"]
            # Times in the browser's zone (UTC+1 in December), not the server's UTC.
            created = datetime.fromisoformat(out["bulkOperation"]["createdAt"])
            local = created.astimezone(ZoneInfo("Europe/Amsterdam"))
            assert f"{local:%H:%M}" in bulk["text"], (local, bulk["text"])
            await sink.wait_for(50)

            # The relay refuses one candidate for good: listed FAILED with the reason.
            sink.handler.refuse_rcpt[refused.email.lower()] = (
                f"550 5.1.1 <{refused.email}>: Recipient address rejected: mailbox unknown")
            sent = (await _gql(client, tenant.token, SEND, input={
                "candidateId": refused.cand_gid, "subject": "About your interview",
                "body": "Hello"}))["sendMessage"]
            assert sent["errors"] == []
            mid = sent["message"]["id"]
            failed = await browser.ask("message", id=mid, status="FAILED")
            assert "mailbox unknown" in failed["text"] and "550" in failed["text"]
            assert "About your interview" in failed["text"]
            assert "Bulk50 Last50" in failed["text"]
            assert failed["buttons"] == ["Retry"]
            counts = await browser.ask("count", status="FAILED", count=1)
            assert counts["SENT"] == 50

            # The relay accepts again; Retry on the page makes it SENT.
            sink.handler.refuse_rcpt.clear()
            retried = await browser.ask("retry", id=mid)
            assert retried["buttons"] == 0 and retried["focusInRow"] is True
            assert "Sent" in retried["text"]
            assert "Sent" in retried["announced"]
            assert (await _gql(client, tenant.token, MESSAGE, id=mid))["message"]["status"] \
                == "SENT"
            counts = await browser.ask("count", status="SENT", count=51)
            assert counts["FAILED"] == 0
        await sink.wait_for(51)
        final = await browser.finish()
    finally:
        await browser.kill()
    _assert_clean(final)
    assert final["loads"] == 1, "the page was reloaded"
    assert "#" not in final["url"] and tenant.token not in final["url"]
    assert final["stored"] == tenant.token
    assert final["title"] == "Outbox · recruitmail"
    assert final["who"] == "Acme Recruiting · signed in as Ada Admin"
    assert "Europe/Amsterdam" in final["footer"]
    assert final["landmarks"]["main"] == 1 and final["landmarks"]["live"] >= 1
    assert final["landmarks"]["h1"] == "H1"
    assert final["landmarks"]["sections"] == [
        "Messages by status", "Bulk operations", "Failed and bounced", "Scheduled",
        "Calendar answers"]
    assert len(final["sockets"]) == 1, final["sockets"]
    assert final["phoneOverflow"] <= 0, "the page scrolls sideways on a phone"
    assert (SCREENSHOTS / "outbox.png").stat().st_size > 10_000


async def test_outbox_cancel_scheduled_and_calendar_answers(
        browser_ready: None, sink: Any, live_server: Any, live_worker: None, gateway: Any,
        tenant: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    people = await _applicants(tenant, 3, first="Sched", email="sched")
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    browser = await Browser.start(LIVE_SCRIPT, {
        "BASE_URL": live_server.http_url, "TOKEN": tenant.token, "SHOTS": str(SCREENSHOTS)})
    try:
        await browser.expect("ready")
        async with httpx.AsyncClient(base_url=live_server.http_url, timeout=30) as client:
            # A scheduled message appears with Cancel; Cancel makes it CANCELLED.
            one = (await _gql(client, tenant.token, SEND, input={
                "candidateId": people[0].cand_gid, "subject": "See you next week",
                "body": "Hello", "scheduledAt": later}))["sendMessage"]
            assert one["errors"] == []
            row = f'[data-message-id="{one["message"]["id"]}"]'
            shown = await browser.ask("wait", selector=f'{row}[data-status="SCHEDULED"]')
            assert shown["buttons"] == ["Cancel"] and "See you next week" in shown["text"]
            await browser.ask("press", selector=row, button="Cancel",
                              until=f'{row}[data-status="CANCELLED"]')
            counts = await browser.ask("count", status="CANCELLED", count=1)
            assert counts["SCHEDULED"] == 0

            # A scheduled bulk appears by itself (no reload) with Cancel.
            out = (await _gql(client, tenant.token, SEND_BULK, input={
                "applicationIds": [p.app_gid for p in people[1:]], "subject": "Later",
                "body": "Hi", "scheduledAt": later}))["sendBulkEmail"]
            assert out["errors"] == []
            card = f'[data-bulk-operation-id="{out["bulkOperation"]["id"]}"]'
            shown = await browser.ask("wait", selector=f'{card}[data-state="SCHEDULED"]')
            assert shown["buttons"] == ["Cancel"] and "Bulk email to 2 candidates" in shown["text"]
            await browser.ask("press", selector=card, button="Cancel",
                              until=f'{card}[data-state="CANCELLED"]')

            # The candidate's calendar accepts the invitation: the answer shows up live.
            cid = (await _gql(client, tenant.token, SETUP, c={
                "firstName": "Nina", "lastName": "Tester", "email": "nina@example.org",
                "timezone": "Europe/Amsterdam"}))["createCandidate"]["candidate"]["id"]
            pid = (await _gql(client, tenant.token, POSITION))["createPosition"]["position"]["id"]
            aid = (await _gql(client, tenant.token, APPLY, c=cid, p=pid)
                   )["createApplication"]["application"]["id"]
            iid = (await _gql(client, tenant.token, SCHEDULE, a=aid)
                   )["scheduleInterview"]["interview"]["id"]
            assert (await _gql(client, tenant.token, INVITE, i=iid)
                    )["sendInterviewInvitation"]["errors"] == []
            [mail] = await sink.wait_for(1)
            [event] = _calendar(mail).walk("VEVENT")
            uid, organizer = str(event["UID"]), str(event["ORGANIZER"])[len("mailto:"):]
            delivered = await smtp_send(gateway.port, outlook_reply(
                uid, 0, "nina@example.org", "ACCEPTED", "Gerne\\, bis dann"), organizer)
            assert delivered.code == 250
            answer = await browser.ask(
                "wait", selector=f'[data-interview-id="{iid}"][data-response="ACCEPTED"]')
            assert "Nina Tester" in answer["text"] and "Accepted" in answer["text"]
            assert "Gerne, bis dann" in answer["text"]
        final = await browser.finish()
    finally:
        await browser.kill()
    _assert_clean(final)
    assert final["loads"] == 1


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


async def test_outbox_sign_in_wrong_token_and_sign_out(browser_ready: None, live_server: Any,
                                                       tenant: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = await asyncio.to_thread(run_node_script, SIGN_IN_SCRIPT, {
        "BASE_URL": live_server.http_url, "TOKEN": tenant.token, "SHOTS": str(SCREENSHOTS)})
    assert out.get("error") is None, out.get("error")
    assert out["blocked"] == [] and out["pageErrors"] == [], out
    assert "#" not in out["url"]
    wrong = out["wrong"]
    assert "not accepted" in wrong["error"] and wrong["role"] == "alert"
    assert wrong["requests"] == 1 and wrong["sockets"] == 0, wrong
    assert wrong["stored"] is None and wrong["invalid"] == "true" and wrong["focused"] == "token"
    assert "Paste an API token" in out["empty"]
    assert out["signedIn"]["stored"] == tenant.token
    assert out["signedIn"]["who"] == "Acme Recruiting · signed in as Ada Admin"
    assert out["signedOut"] is None
    assert out["consoleErrors"] == [], out["consoleErrors"]

