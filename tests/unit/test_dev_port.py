"""`recruitmail dev` says in its own words that the api port is taken (no raw Errno 98)."""

from __future__ import annotations

import socket

import click
import pytest

from recruitmail.dev import check_port_free


def test_a_busy_api_port_is_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(click.ClickException) as exc:
            check_port_free("127.0.0.1", port, "RECRUITMAIL_API_PORT")
    text = exc.value.format_message()
    assert f"127.0.0.1:{port}" in text and "in use" in text and "RECRUITMAIL_API_PORT" in text
    assert "Errno" not in text


def test_a_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_port_free("127.0.0.1", port, "RECRUITMAIL_API_PORT")
