"""Real processes: `recruitmail worker` sending, killed mid-bulk and restarted, stopped with
SIGTERM mid-send; the admin command's JSON."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from core.models import Application, Candidate, Message, Position
from core.models.enums import MessageStatus as S
from core.services import bulk, messaging, recording

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _spawn(env, *args: str) -> subprocess.Popen[bytes]:
    """A real process; its log goes to a file in the test's directory (a pipe nobody reads
    would fill up and block the process)."""
    log = (env.tmp / f"{args[0]}-{len(list(env.tmp.glob('*.log')))}.log").open("wb")
    return subprocess.Popen([str(BIN / "recruitmail"), *args], env={**os.environ, **env.environ()},
                            stdout=log, stderr=subprocess.STDOUT)


async def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while proc.poll() is None and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        raise AssertionError("process did not stop")


async def _wait(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _applications(tenant, n: int) -> list[Application]:
    pos = await Position.create(company_id=tenant.company.id, title="Engineer")
    cands = [Candidate(company_id=tenant.company.id, first_name=f"C{i}", last_name="L",
                       email=f"c{i}@example.org") for i in range(n)]
    await Candidate.bulk_create(cands)
    apps = [Application(company_id=tenant.company.id, candidate_id=c.id, position_id=pos.id)
            for c in cands]
    await Application.bulk_create(apps)
    return apps


def _slow(sink, seconds: float) -> None:
    original = sink.handler.handle_DATA

    async def slow_data(server, session, envelope):
        await asyncio.sleep(seconds)
        return await original(server, session, envelope)

    sink.handler.handle_DATA = slow_data


async def test_worker_process_sends(tenant, sink, env):
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina", last_name="V",
                                  email="nina@example.org")
    msg = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                       subject="From a process", body="Text")
    proc = _spawn(env, "worker")
    try:
        [mail] = await sink.wait_for(1, timeout=60)
        assert mail.message["Subject"] == "From a process"

        async def sent() -> bool:
            await msg.refresh_from_db()
            return msg.status == S.SENT

        await _wait(sent, what="SENT")
    finally:
        await _stop(proc)


async def test_kill_worker_mid_bulk_loses_nothing(tenant, sink, env):
    apps = await _applications(tenant, 300)
    _slow(sink, 0.01)
    op = await bulk.send_bulk_email(employee=tenant.employee, application_ids=[a.id for a in apps],
                                    subject="Hello {{ candidate.first_name }}", body="Text")
    first = _spawn(env, "worker")
    await _wait(lambda: _count_at_least(sink, 40), what="first mails")
    await _stop(first, signal.SIGKILL)
    stranded = await Message.filter(bulk_operation_id=op.id).exclude(status=S.SENT).count()
    assert stranded > 0, "the worker finished before it was killed; nothing was tested"
    second = _spawn(env, "worker")
    try:
        async def all_sent() -> bool:
            return await Message.filter(bulk_operation_id=op.id, status=S.SENT).count() == 300

        await _wait(all_sent, timeout=120, what="every message SENT after the restart")
    finally:
        await _stop(second)
    ids = {m.rfc_message_id for m in await Message.filter(bulk_operation_id=op.id)}
    received = Counter(r.message["Message-ID"].strip("<>") for r in sink.received)
    assert set(received) == ids  # every message arrived; nothing foreign
    # A duplicate, if the kill caused one, carries the same Message-ID as its original.
    assert sum(received.values()) >= 300
    await op.refresh_from_db()
    assert op.sent == 300 and op.queued == 0


async def _count_at_least(sink, n: int) -> bool:
    return len(sink.received) >= n


async def test_sigterm_mid_send_leaves_nothing_sending(tenant, sink, env):
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina", last_name="V",
                                  email="nina@example.org")
    _slow(sink, 1.0)
    msgs = [await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                         subject=f"M{i}", body="Text") for i in range(3)]
    proc = _spawn(env, "worker")

    async def sending() -> bool:
        return await Message.filter(status=S.SENDING).exists()

    await _wait(sending, what="a message in SENDING")
    await _stop(proc, signal.SIGTERM)
    for m in msgs:
        await m.refresh_from_db()
        assert m.status in (S.SENT, S.QUEUED), m.status
    assert not await Message.filter(status=S.SENDING).exists()


async def test_admin_commands_print_json(env):
    out = subprocess.run(
        [str(BIN / "recruitmail"), "admin", "create-company", "Acme", "--admin-name", "Ada",
         "--admin-email", "ada@acme.example", "--no-templates"],
        env={**os.environ, **env.environ()}, capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert set(data) == {"company_id", "employee_id", "token"}
    out = subprocess.run(
        [str(BIN / "recruitmail"), "admin", "create-employee", "--company-id", data["company_id"],
         "--name", "Bo", "--email", "bo@acme.example"],
        env={**os.environ, **env.environ()}, capture_output=True, text=True, check=True)
    emp = json.loads(out.stdout)
    assert set(emp) == {"employee_id", "token"}
    out = subprocess.run(
        [str(BIN / "recruitmail"), "admin", "create-token", "--employee-id", emp["employee_id"]],
        env={**os.environ, **env.environ()}, capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout)) == {"token"}
    bad = subprocess.run([str(BIN / "recruitmail"), "migrate"],
                         env={**os.environ, **env.environ(), "RECRUITMAIL_API_PORT": "70000"},
                         capture_output=True, text=True)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1].count("RECRUITMAIL_API_PORT") == 1


async def _bulk_under_faults(tenant, sink, env, monkeypatch, sig: int, n: int = 2000,
                             stops: int = 5) -> tuple[Counter[str], set[str], float]:
    """A bulk of n mails sent by two worker processes with the default lease (15 s) and
    sweep (5 s); one of them is stopped with `sig` `stops` times during the send (as the
    sink's count passes evenly spaced marks), and started again each time. Returns the
    Message-IDs received (with their counts), those of the operation, and the seconds from
    the last restart to the last SENT."""
    if env.backend != "postgres":
        pytest.skip("the crash scenario runs on PostgreSQL, as deployed")
    monkeypatch.setenv("RECRUITMAIL_LEASE_SECONDS", "15")
    monkeypatch.delenv("RECRUITMAIL_SWEEP_INTERVAL_SECONDS")
    monkeypatch.setenv("RECRUITMAIL_SMTP_TIMEOUT_SECONDS", "30")
    apps = await _applications(tenant, n)
    _slow(sink, 0.02)  # 8 connections a worker: at most ~800 mails/s in all
    op = await bulk.send_bulk_email(employee=tenant.employee, application_ids=[a.id for a in apps],
                                    subject="Hello {{ candidate.first_name }}", body="Text")
    workers = [_spawn(env, "worker"), _spawn(env, "worker")]
    loop = asyncio.get_running_loop()
    restarted = loop.time()
    try:
        for k in range(stops):
            mark = n * (k + 1) // (stops + 2)
            await _wait(lambda m=mark: _count_at_least(sink, m), timeout=120,
                        what=f"{mark} mails at the sink")
            victim = k % 2
            t0 = loop.time()
            await _stop(workers[victim], sig)
            print(f"stop {k}: {loop.time() - t0:.1f} s, {len(sink.received)} received")
            assert await Message.filter(bulk_operation_id=op.id).exclude(
                status=S.SENT).exists(), "the bulk was done before the stop; nothing was tested"
            if sig == signal.SIGTERM:
                # A stopped worker leaves nothing SENDING of its own (what it had claimed
                # and not sent went back to the queue): what is SENDING now is the other
                # worker's, under that worker's one claim token, renewed by its heartbeat.
                tokens = set(await Message.filter(
                    bulk_operation_id=op.id, status=S.SENDING).values_list(
                    "claim_token", flat=True))
                assert len(tokens) <= 1, tokens
                assert not await Message.filter(
                    bulk_operation_id=op.id, status=S.SENDING,
                    lease_until__lt=recording.now()).exists()
            workers[victim] = _spawn(env, "worker")
            restarted = loop.time()

        async def all_sent() -> bool:
            return await Message.filter(bulk_operation_id=op.id, status=S.SENT).count() == n

        await _wait(all_sent, timeout=90, what="every message SENT after the last restart")
        recovery = loop.time() - restarted
    finally:
        for w in workers:
            await _stop(w)
    await asyncio.sleep(0.5)  # a straggling copy would arrive now
    ids = {m.rfc_message_id for m in await Message.filter(bulk_operation_id=op.id)}
    received = Counter(r.message["Message-ID"].strip("<>") for r in sink.received)
    await op.refresh_from_db()
    assert op.sent == n and op.queued == 0 and op.failed == 0
    assert not await Message.filter(bulk_operation_id=op.id).exclude(status=S.SENT).exists()
    return received, ids, recovery


async def test_kill_9_five_times_in_a_bulk(tenant, sink, env, monkeypatch):
    """2,000 mails, two workers, five `kill -9` during the send, each followed by a restart:
    nothing lost; a duplicate is only a mail the server had accepted when its worker died
    before writing SENT, at most one per connection (8 a worker), with the Message-ID of the
    first copy; everything SENT soon after the last restart (leases of 15 s)."""
    received, ids, recovery = await _bulk_under_faults(tenant, sink, env, monkeypatch,
                                                       signal.SIGKILL)
    assert set(received) == ids  # every message arrived, under its own Message-ID only
    duplicates = sum(received.values()) - len(ids)
    print(f"\nkill -9 x5: {duplicates} duplicates, all SENT {recovery:.1f} s after the "
          "last restart")
    assert duplicates <= 8 * 5


async def test_sigterm_five_times_in_a_bulk(tenant, sink, env, monkeypatch):
    """The same with SIGTERM (deploys, scaling down): not one duplicate."""
    received, ids, _ = await _bulk_under_faults(tenant, sink, env, monkeypatch, signal.SIGTERM)
    assert set(received) == ids
    assert sum(received.values()) == len(ids), [m for m, c in received.items() if c > 1]
