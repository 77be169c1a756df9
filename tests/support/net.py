"""Loopback ports for the tests: one that nothing listens on (yet)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port that was free a moment ago: for a server a test starts, or an
    address where nothing answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
