"""The /outbox page following live updates in headless Chromium: a bulk's progress, a
message the relay refuses and its retry, cancelled scheduled mail and calendar answers.

On the real product: uvicorn serving create_app(), the arq worker running on the same
loop, the aiosmtpd sink as the relay, real Redis and the database of the run (SQLite and
PostgreSQL). The test starts a bulk through the API, makes the sink refuse and accept, and
the page, driven through tests/support/outbox_page.py, reports what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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
from tests.support.bulk_graphql import _applicants
from tests.support.inbound import smtp_send
from tests.support.outbox_page import LIVE_SCRIPT, SCREENSHOTS, SEND, Browser

SEND_BULK = """
mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) { bulkOperation { id total createdAt }
                                  errors { code message } } }"""
MESSAGE = "query($id: ID!) { message(id: $id) { status error attempts } }"


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
