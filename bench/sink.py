"""A counting SMTP sink in its own process (the benchmark's 'same kind of sink').

Usage: python bench/sink.py PORT COUNT_FILE   — accepts every mail, writes the running count
to COUNT_FILE at most every 0.2 s and once more when stopped with SIGTERM.

Like the relays it stands in for (Postfix, Exim, the big providers' submission servers), it
announces PIPELINING (RFC 2920); aiosmtpd reads pipelined commands in order but does not
say so itself. BENCH_SINK_PIPELINING=0 leaves it out.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Counter:
    def __init__(self, out: Path) -> None:
        self.count = 0
        self.out = out
        self.written = 0.0
        self.ids: set[bytes] = set()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if os.environ.get("BENCH_SINK_PIPELINING", "1") != "0":
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        found = MESSAGE_ID.search(bytes(envelope.content or b""))
        if found:
            self.ids.add(found.group(1))
        now = time.monotonic()
        if now - self.written > 0.2:
            self.out.write_text(str(self.count))
            self.written = now
        return "250 OK"


async def main(port: int, out: Path) -> None:
    loop = asyncio.get_running_loop()
    counter = Counter(out)
    server = await loop.create_server(
        lambda: SMTP(counter, hostname="sink.bench", loop=loop), "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    out.write_text("0")
    await stop.wait()
    server.close()
    out.write_text(str(counter.count))
    # Distinct Message-IDs: the count minus these is the number of duplicates.
    out.with_suffix(".ids").write_text(str(len(counter.ids)))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
