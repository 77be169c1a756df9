"""A server far away (not a test): prints figures, asserts nothing.

The worker's transport sends mails (one To and one Cc each) over one connection to an
aiosmtpd server behind a proxy that holds every byte for --delay ms in each direction (a
company's server across the internet), once with the server announcing PIPELINING and
once without: the time a mail takes and the mails a second one connection gives. Nothing
else is involved (no database, no Redis), so the figures hardly depend on this machine.

Usage: .venv/bin/python bench/far.py [--delay 10,25] [--mails 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RECRUITMAIL_SECRET_KEY", "bench-secret")

from aiosmtpd.smtp import SMTP, Envelope, Session

from core.mail.mime import Envelope as MailEnvelope
from core.mail.mime import build_email
from core.mail.smtp_connect import SmtpTarget
from worker.smtp_answers import Outcome
from worker.transport import Transport


class Server:
    def __init__(self, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.received = 0

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received += 1
        return "250 OK"


async def _carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 delay: float) -> None:
    """Bytes from `reader` to `writer`, each chunk `delay` seconds later, in order."""
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await chunks.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    out = asyncio.create_task(deliver())
    while True:
        data = await reader.read(65536)
        chunks.put_nowait((time.monotonic() + delay, data))
        if not data:
            break
    await out


def _mail() -> MailEnvelope:
    return build_email(SimpleNamespace(  # type: ignore[arg-type]  # the fields it reads
        id=uuid.uuid4(), from_name="Ada Admin", from_address="recruiting@acme.example",
        to_addrs=["nina@example.org"], cc_addrs=["hr@example.org"], bcc_addrs=[],
        subject="Your interview", body="Dear Nina,\n\nsee you on Monday.\n" * 20,
        body_html=None, ics=None, ics_method=None, created_at=datetime.now(UTC),
        rfc_message_id=f"{uuid.uuid4().hex}@acme.example", in_reply_to=None))


async def one_run(delay: float, pipelining: bool, mails: int, announce: bool = False) -> float:
    """Seconds a mail takes on one connection (after the first, which opens it); with
    `announce`, each mail's envelope goes behind the previous mail's content, as the
    worker's lanes send a stream (worker/smtp_dialogue.py)."""
    loop = asyncio.get_running_loop()
    handler = Server(pipelining)
    server = await loop.create_server(lambda: SMTP(handler, hostname="far.example",
                                                   loop=loop), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    links: list[asyncio.Task[object]] = []

    async def link(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        links.append(asyncio.gather(_carry(reader, up_writer, delay),
                                    _carry(up_reader, writer, delay)))  # type: ignore[arg-type]

    proxy = await asyncio.start_server(link, "127.0.0.1", 0)
    target = SmtpTarget("127.0.0.1", proxy.sockets[0].getsockname()[1])
    transport = Transport()
    try:
        await transport.send(target, _mail())
        queue = [_mail() for _ in range(mails + 1)]
        start = time.perf_counter()
        for i in range(mails):
            following = queue[i + 1]

            async def gate(m: MailEnvelope = following) -> tuple[str, list[str]] | None:
                return (m.mail_from, m.recipients) if announce else None

            result = await transport.send(target, queue[i], ["nina@example.org"],
                                          before_data=gate)
            if result.outcome != Outcome.SENT:
                raise SystemExit(f"not sent: {result}")
        return (time.perf_counter() - start) / mails
    finally:
        await transport.close()
        for task in links:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        proxy.close()
        server.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", default="10,25", help="ms each way, comma-separated")
    parser.add_argument("--mails", type=int, default=40)
    args = parser.parse_args()
    for delay_ms in (float(d) for d in args.delay.split(",")):
        one = await one_run(delay_ms / 1000, False, args.mails)
        piped = await one_run(delay_ms / 1000, True, args.mails)
        ahead = await one_run(delay_ms / 1000, True, args.mails, announce=True)
        print(f"round trip {2 * delay_ms:5.0f} ms: one command at a time {one * 1000:6.1f} ms a"
              f" mail ({1 / one:5.1f}/s), pipelined {piped * 1000:6.1f} ms"
              f" ({1 / piped:5.1f}/s), with the next envelope behind the content"
              f" {ahead * 1000:6.1f} ms ({1 / ahead:5.1f}/s): {one / ahead:.1f}x, one"
              " connection, To + Cc")


if __name__ == "__main__":
    asyncio.run(main())
