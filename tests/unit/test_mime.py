"""The text + HTML mail written straight to bytes is the same mail as the stdlib's
EmailMessage (policy SMTP) for the same outbox row: same headers, same parts, same decoded
text. Thousands of generated rows, with the values that make mail hard: non-ASCII names,
quoting, encoded-word look-alikes, long lines, trailing spaces, dots and boundaries."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from io import BytesIO
from types import SimpleNamespace
from typing import Any

import pytest

from core.mail.mime import SMTP_POLICY, Attachment, alternative_bytes, build_email, email_message

NAMES = ["Ada Admin", "", "Jan de Vries", "O'Brien", "Doe, John", "J. R. R. Tolkien",
         "José Müller", "Łukasz Żółw", "李小龙", "Ann \"Nan\" Lee", "=?utf-8?q?Eve?=",
         "A" * 90, "Team  Recruiting  ", "x@y", "(HR) Team", "Zoë 😀"]
ADDRS = ["recruiting@bench.example", "c1@example.org", "first.last+tag@sub.example.co.uk",
         "o'brien@example.org", "a_b-c@example.org", "x" * 60 + "@" + "d" * 50 + ".example"]
WORDS = ["Hello", "candidate", "für", "Ihre", "Bewerbung", "naïve", "=?", "?=", "--=_0",
         "=3D", "From", ".", "..", "€", "😀", "\t", "a" * 120, "<b>", "&amp;", "  ", "'",
         "\"", "=", "--", "end.", "https://example.org/x?y=1&z=2", "=?utf-8?q?caf=C3=A9?="]


def _text(rng: random.Random, lines: int) -> str:
    out = []
    for _ in range(lines):
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30))))
    sep = rng.choice(["\n", "\r\n", "\n", "\r"])
    return sep.join(out) + rng.choice(["", "\n", " ", "\n\n"])


def _row(rng: random.Random) -> Any:
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**8))
    subject = " ".join(rng.choice([*WORDS, "Your", "application", "Interview"])
                       for _ in range(rng.randint(1, 25))).replace("\t", " ")
    return SimpleNamespace(
        id=uuid.UUID(int=rng.getrandbits(128)),
        from_name=rng.choice(NAMES), from_address=rng.choice(ADDRS),
        to_addrs=rng.sample(ADDRS, rng.choice([1, 1, 1, 2, 3])),
        cc_addrs=rng.sample(ADDRS, rng.choice([0, 0, 1, 2])), bcc_addrs=[],
        subject=subject.strip() or "x", created_at=created,
        rfc_message_id=f"{uuid.UUID(int=rng.getrandbits(128)).hex}@mail.example",
        in_reply_to=rng.choice([None, None, "<abc@example.org>",
                                "<a@example.org> <b@example.org>"]),
        body=_text(rng, rng.randint(0, 12)),
        body_html=rng.choice([None, None, "<p>" + _text(rng, 3) + "</p>"]),
        ics=None, ics_method=None)


def _stdlib_bytes(row: Any) -> bytes:
    out = BytesIO()
    BytesGenerator(out, policy=SMTP_POLICY).flatten(email_message(row))
    return out.getvalue()


def _parse(data: bytes) -> EmailMessage:
    parsed: EmailMessage = message_from_bytes(data, policy=policy.default)  # type: ignore[assignment]
    return parsed


def _headers(m: EmailMessage) -> list[tuple[str, str]]:
    return [(k.lower(), str(v)) for k, v in m.items()
            if k.lower() not in ("content-type", "mime-version", "content-transfer-encoding")]


def _parts(m: EmailMessage) -> list[tuple[str, str]]:
    return [(p.get_content_type(), p.get_content()) for p in m.iter_parts()]


def test_written_mail_equals_the_stdlib_mail_for_generated_rows() -> None:
    rng = random.Random(20261127)
    for i in range(700):
        row = _row(rng)
        fast = alternative_bytes(row)
        ref = _parse(_stdlib_bytes(row))
        got = _parse(fast)
        assert _headers(got) == _headers(ref), (i, row)
        assert got.get_content_type() == "multipart/alternative"
        assert _parts(got) == _parts(ref), (i, row)
        assert not got.defects and all(not p.defects for p in got.iter_parts())
        # On the wire: 7-bit, CRLF line ends only, no line over SMTP's limit.
        assert fast.isascii()
        assert b"\n" not in fast.replace(b"\r\n", b"") and b"\r" not in fast.replace(b"\r\n", b"")
        lines = fast.split(b"\r\n")
        assert max(len(x) for x in lines) <= 998
        head = fast.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        ref_head = _stdlib_bytes(row).split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert max(len(x) for x in head) <= max(78, max(len(x) for x in ref_head))


def test_common_bulk_mail_is_written_without_the_stdlib_folder() -> None:
    row = _row(random.Random(1))
    row.from_name, row.from_address = "Ada Admin", "recruiting@bench.example"
    row.to_addrs, row.cc_addrs, row.in_reply_to = ["c7@example.org"], [], None
    row.subject, row.body, row.body_html = "About Backend Engineer, Nina", "Dear Nina,\n\nHi.", None
    data = alternative_bytes(row)
    assert data.startswith(b"From: Ada Admin <recruiting@bench.example>\r\nTo: c7@example.org\r\n")
    assert b"Subject: About Backend Engineer, Nina\r\n" in data
    assert b"Content-Transfer-Encoding: 7bit\r\n\r\nDear Nina,\r\n\r\nHi.\r\n" in data


@pytest.mark.parametrize("field", ["subject", "from_name", "in_reply_to"])
@pytest.mark.parametrize("evil", ["Hi\r\nBcc: victim@example.org", "Hi\nX: y", "Hi\rX: y"])
def test_a_line_break_in_a_header_value_is_refused_not_filtered(field: str, evil: str) -> None:
    row = _row(random.Random(2))
    setattr(row, field, evil)
    with pytest.raises(ValueError):
        alternative_bytes(row)
    with pytest.raises(ValueError):
        email_message(row)


def test_the_boundary_never_occurs_in_a_body() -> None:
    row = _row(random.Random(3))
    for _ in range(50):
        data = alternative_bytes(row)
        boundary = _parse(data).get_boundary()
        assert boundary is not None
        body = data.split(b"\r\n\r\n", 1)[1]
        assert body.count(boundary.encode()) == 3  # two delimiters and the close


def test_other_shapes_stay_email_messages() -> None:
    row = _row(random.Random(4))
    row.to_addrs = ["josé@exämple.org"]
    assert build_email(row).data is None  # SMTPUTF8 decided by the transport
    row.to_addrs = ["c1@example.org"]
    env = build_email(row, [Attachment("cv.pdf", "application/pdf", b"%PDF-1.4")])
    assert env.message is not None and env.data is None
    row.ics, row.ics_method = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "REQUEST"
    assert build_email(row).message is not None
    row.ics = None
    plain = build_email(row)
    assert plain.data is not None and plain.parsed()["To"] == "c1@example.org"
