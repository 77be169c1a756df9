"""The /outbox page in headless Chromium, driven step by step, for the outbox browser tests.

Every request to a host other than 127.0.0.1 is blocked and recorded. The browser is a
Node script (playwright-core, see tests/support/browser.py) that a test drives over its
stdin/stdout with ``Browser``: the test acts through the API or on the server, and the
script reports what the page shows. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tests.support.browser import CHROMIUM_FLAGS, chromium_path
from tests.support.paths import NODE_MODULES

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
STEP_TIMEOUT = 90.0

SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id status } errors { code message } } }"""

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
