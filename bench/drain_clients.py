"""Subscribers that cost their machine almost nothing (bench/live_bulk.py --drain).

Each is a graphql-transport-ws client over a plain socket: it splits the server's frames
and counts the `next` messages, answers pings, and parses no JSON. They stand in for
browsers on other machines: what a bulk loses to them on this machine is the server's cost.

Usage (as live.py --client): drain_clients.py URL TOKEN COUNT READY OUT STOP
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
from pathlib import Path
from urllib.parse import urlsplit

SUBSCRIPTION = """subscription { messageStatusChanged {
  message { id status subject candidate { id fullName } } previousStatus status at } }"""


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def one(url: str, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n"
                  "\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(f"no websocket: {head[:200]!r}")
    for message in ({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}},
                    {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}):
        writer.write(_frame(0x1, json.dumps(message).encode()))
    await writer.drain()
    return reader, writer


async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                counts: list[int], i: int) -> None:
    buf = b""
    while True:
        chunk = await reader.read(1 << 20)
        if not chunk:
            return
        buf += chunk
        pos = 0
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, start = b1 & 0x7F, pos + 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n, start = struct.unpack_from("!H", buf, pos + 2)[0], pos + 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n, start = struct.unpack_from("!Q", buf, pos + 2)[0], pos + 10
            if len(buf) < start + n:
                break
            opcode = b0 & 0x0F
            if opcode == 0x1:
                payload = buf[start:start + n]
                if b'"type":"next"' in payload:
                    counts[i] += 1
                elif b'"type":"ping"' in payload:
                    writer.write(_frame(0x1, b'{"type":"pong"}'))
            elif opcode == 0x9:  # websocket ping
                writer.write(_frame(0xA, buf[start:start + n]))
            elif opcode == 0x8:
                return
            pos = start + n
        buf = buf[pos:]


async def main(url: str, token: str, count: int, ready: Path, out: Path, stop: Path) -> None:
    conns = [await one(url, token) for _ in range(count)]
    counts = [0] * count
    tasks = [asyncio.create_task(drain(r, w, counts, i)) for i, (r, w) in enumerate(conns)]
    ready.write_text("ok")
    while not stop.exists():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    for t in tasks:
        t.cancel()
    out.write_text(json.dumps({"counts": counts}))


if __name__ == "__main__":
    u, t, c, r, o, s = sys.argv[1:7]
    asyncio.run(main(u, t, int(c), Path(r), Path(o), Path(s)))
