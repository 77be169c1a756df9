"""Hostile input for core.mail.itip: garbage, huge, deeply nested and malformed mail and
calendars never raise or hang, and still give their best-effort result."""

from __future__ import annotations

import base64
import email
import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.message import Message

import pytest

from core.mail.itip import InboundCalendar, classify_bytes, classify_message, parse_calendar_bytes
from tests.support.itip_mail import ACCEPT, event, ics, mail


@contextmanager
def hang_guard(limit: float = 1.0) -> Iterator[None]:
    """Fails only when the parser hangs (a minute), never on speed: tests assert no timings;
    bench/ measures them. ``limit`` is kept as documentation of the expected order."""
    del limit

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError("the parser hung on hostile input")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _nested(depth: int, leaf: bytes) -> bytes:
    body = b"Content-Type: text/calendar\r\n\r\n" + leaf
    for level in range(depth):
        b = b"b%d" % level
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + b
            + b'"\r\n\r\n--'
            + b
            + b"\r\n"
            + body
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
    return b"From: a@b.c\r\nMIME-Version: 1.0\r\n" + body


HOSTILE: dict[str, Callable[[], InboundCalendar]] = {
    "empty": lambda: classify_bytes(b""),
    "garbage": lambda: classify_bytes(random.Random(1).randbytes(200_000)),
    "nul-bytes": lambda: classify_bytes(b"\x00" * 100_000),
    "garbage-calendar": lambda: parse_calendar_bytes(random.Random(2).randbytes(100_000)),
    "not-bytes": lambda: classify_bytes("BEGIN:VCALENDAR\nMETHOD:REPLY\n"),  # type: ignore[arg-type]
    "20mb-bare-ics": lambda: parse_calendar_bytes(ACCEPT.encode() + b"X-PAD:" + b"A" * 20_000_000),
    "20mb-attendees": lambda: classify_bytes(
        ics(*event(*["ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@b.c"] * 500_000)).encode()
    ),
    "20mb-base64-part": lambda: classify_bytes(
        mail(("text/calendar", "base64", base64.encodebytes(b"A" * 15_000_000)))
    ),
    "2mb-one-line-many-params": lambda: parse_calendar_bytes(
        "BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nATTENDEE" + ";X=mailto:y" * 300_000 + ":z"
    ),
    "2mb-fold-storm": lambda: parse_calendar_bytes(
        "BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nCOMMENT:" + "\n x" * 1_000_000
    ),
    "begin-storm": lambda: parse_calendar_bytes("BEGIN:VCALENDAR\n" + "BEGIN:X\n" * 300_000),
    "begin-end-storm": lambda: parse_calendar_bytes(
        "BEGIN:VCALENDAR\nMETHOD:REQUEST\n" + "BEGIN:VEVENT\nUID:1\nEND:VEVENT\n" * 80_000
    ),
    "unterminated": lambda: parse_calendar_bytes(
        b"BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nUID:u\nATTENDEE;PARTSTAT=ACCEPTED:a@b.c"
    ),
    "nested-1000": lambda: classify_bytes(_nested(1000, ACCEPT.encode())),
    "nested-60": lambda: classify_bytes(_nested(60, ACCEPT.encode())),
    "many-parts": lambda: classify_bytes(
        mail(
            *[("text/calendar", "", ACCEPT.replace("uid-1", f"u{i}").encode()) for i in range(2000)]
        )
    ),
    "bad-base64": lambda: classify_bytes(mail(("text/calendar", "base64", b"!!!=\x00\xff=="))),
    "bad-charset": lambda: classify_bytes(
        mail(('text/calendar; charset="\x00utf-1\'"', "8bit", b"\x81\x8d\xfd" + ACCEPT.encode()))
    ),
    "bad-headers": lambda: classify_bytes(
        b"Content-Type: multipart/mixed; boundary=\r\nFrom: \xff\r\n\r\n--\r\n\r\n" * 1000
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_never_raises_or_hangs(name: str) -> None:
    with hang_guard():
        result = HOSTILE[name]()
    assert isinstance(result, InboundCalendar)
    assert result.kind in {"none", "no-method", "reply", "request", "reply-without-event", "bounce"}


def test_hostile_results_are_best_effort() -> None:
    assert HOSTILE["unterminated"]().replies[0].attendee == "a@b.c"
    assert HOSTILE["nested-60"]().kind == "reply"
    assert classify_bytes(_nested(100, ACCEPT.encode())).kind == "none"  # > MAX_MIME_DEPTH
    assert HOSTILE["nested-1000"]().kind in ("none", "reply")
    assert len(HOSTILE["20mb-attendees"]().replies) == 1  # deduplicated, capped
    assert HOSTILE["many-parts"]().kind == "reply"
    assert HOSTILE["bad-charset"]().kind == "reply"


def test_deeply_nested_message_object() -> None:
    leaf: Message = email.message_from_bytes(
        b"Content-Type: text/calendar\r\n\r\n" + ACCEPT.encode(), policy=policy.compat32
    )
    root = leaf
    for _ in range(5000):
        parent = Message()
        parent["Content-Type"] = "multipart/mixed"
        parent.set_payload([root])
        root = parent
    with hang_guard():
        assert classify_message(root).kind == "none"
