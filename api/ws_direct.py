"""Writing straight to uvicorn's websocket connections (api/live_ws.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.protocol import State

log = logging.getLogger(__name__)


def _protocol_of(send: Any, depth: int = 0) -> Any:
    """The server protocol object under an ASGI `send` callable (uvicorn's protocol owns
    the callable, possibly wrapped by middleware closures); None when not found."""
    owner = getattr(send, "__self__", None)
    if getattr(owner, "transport", None) is not None or depth > 8:
        return owner
    for cell in getattr(send, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value):
            found = _protocol_of(value, depth + 1)
            if found is not None:
                return found
    return None


def abort(websocket: Any) -> None:
    """Drop the TCP connection under a websocket."""
    protocol = _protocol_of(getattr(getattr(websocket, "ws", None), "_send", None))
    transport = getattr(protocol, "transport", None)
    if transport is None:
        log.warning("cannot drop a websocket that fell behind: no transport found")
        return
    transport.abort()


class DirectWriter:
    """Text frames written straight to uvicorn's websockets-sansio connection: what its
    ASGI `websocket.send` does (frame with the connection's extensions, write to the
    transport), without the middleware chain and a task switch per frame. Flow control is
    kept: nothing is written while the transport is paused; a connection being closed or
    gone is not written to. Other servers (or uvicorn implementations) use ASGI sends."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    @classmethod
    def of(cls, websocket: Any) -> DirectWriter | None:
        protocol = _protocol_of(getattr(getattr(websocket, "ws", None), "_send", None))
        conn = getattr(protocol, "conn", None)
        needed = ("writable", "disconnected", "close_sent", "handshake_complete",
                  "initial_response")
        if (conn is None or not hasattr(conn, "send_text")
                or not hasattr(conn, "data_to_send")
                or not all(hasattr(protocol, name) for name in needed)
                or not isinstance(protocol.writable, asyncio.Event)):
            return None
        return cls(protocol)

    def ready(self) -> bool:
        p = self.protocol
        return bool(p.writable.is_set() and not p.disconnected and not p.close_sent
                    and p.handshake_complete and p.initial_response is None
                    and not p.transport.is_closing())

    async def wait_writable(self) -> None:
        await self.protocol.writable.wait()

    def plain(self) -> bool:
        """No extension (compression) negotiated and nothing half-sent: a server's text
        frame is then the same bytes on every connection (server frames are unmasked)."""
        conn = self.protocol.conn
        return (not conn.extensions and not getattr(conn, "expect_continuation_frame", True)
                and not getattr(conn, "writes", True) and conn.state is State.OPEN)

    def write_many(self, messages: list[bytes]) -> None:
        p = self.protocol
        for data in messages:
            p.conn.send_text(data)
        p.transport.write(b"".join(p.conn.data_to_send()))

    def write_frames(self, frames: list[bytes]) -> None:
        """Text frames made once for every plain connection (see `plain`), in one write;
        nothing once the connection is closing or gone (its close frame is the last)."""
        p = self.protocol
        if not (p.disconnected or p.close_sent or p.transport.is_closing()):
            p.transport.write(b"".join(frames))
