"""Signing in to the /outbox page in headless Chromium: a wrong token is refused without
retrying, an empty form is refused in the page, a pasted token signs in (and a reload
keeps it), and signing out forgets it."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.browser import run_node_script
from tests.support.outbox_page import PRELUDE, SCREENSHOTS

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
