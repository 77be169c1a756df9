"""Run the iMIP/iTIP classifier over the real-client corpus and compare with expected.json.

The corpus lives in the project (``tests/data/imip``, where each file comes from is in its
SOURCES.md); set RECRUITMAIL_CORPUS_DIR to use another copy.
"""

from __future__ import annotations

import base64
import json
import os
import quopri
from pathlib import Path
from typing import Any

import pytest

from core.mail.itip import InboundCalendar, classify_bytes
from tests.support.paths import CORPUS as PROJECT_CORPUS

NOT_CORPUS_FILES = {"expected.json", "SOURCES.md"}
REPLY_FIELDS = ("uid", "attendee", "partstat", "comment")


def _corpus_dir() -> Path:
    override = os.environ.get("RECRUITMAIL_CORPUS_DIR")
    if override:
        return Path(override)
    return PROJECT_CORPUS


CORPUS = _corpus_dir()


def _expected() -> dict[str, dict[str, Any]]:
    path = CORPUS / "expected.json"
    if not path.is_file():
        return {}
    files: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["files"]
    return files


EXPECTED = _expected()
_SKIP_REASON = (
    f"iMIP corpus not found at {CORPUS} (expected.json missing); "
    "set RECRUITMAIL_CORPUS_DIR to the folder holding expected.json"
)


def _require_corpus() -> None:
    assert EXPECTED, _SKIP_REASON


def _classify(name: str) -> InboundCalendar:
    return classify_bytes((CORPUS / name).read_bytes())


def test_every_corpus_file_is_listed_in_expected_json() -> None:
    _require_corpus()
    on_disk = {
        path.relative_to(CORPUS).as_posix()
        for path in CORPUS.rglob("*")
        if path.is_file() and path.name not in NOT_CORPUS_FILES
    }
    assert sorted(on_disk - EXPECTED.keys()) == [], "files missing from expected.json"
    assert sorted(EXPECTED.keys() - on_disk) == [], "expected.json lists missing files"


@pytest.mark.parametrize("name", sorted(EXPECTED) or ["<corpus missing>"])
def test_corpus_file(name: str) -> None:
    _require_corpus()
    expected = EXPECTED[name]
    result = _classify(name)
    assert result.kind == expected["kind"], name
    if expected["kind"] == "reply":
        got = [{key: getattr(reply, key) for key in REPLY_FIELDS} for reply in result.replies]
        assert got == expected["replies"], name
        assert all(reply.uid in result.uids for reply in result.replies)
    elif expected["kind"] != "counter":
        assert result.replies == [], f"{name}: only replies/counters carry answers"


@pytest.mark.parametrize(
    "name", sorted(n for n, e in EXPECTED.items() if e["kind"] == "bounce") or ["<none>"]
)
def test_bounce_reports_quoted_uids_only(name: str) -> None:
    _require_corpus()
    result = _classify(name)
    assert result.method is None
    assert result.replies == []
    assert result.uids, "the bounced invitation's UID is reported for correlation"


def test_bare_ics_and_parse_calendar_bytes_agree() -> None:
    _require_corpus()
    from core.mail.itip import parse_calendar_bytes

    for name in sorted(n for n in EXPECTED if n.endswith(".ics")):
        data = (CORPUS / name).read_bytes()
        assert parse_calendar_bytes(data) == classify_bytes(data), name


def _refold(data: bytes, width: int) -> bytes:
    """Fold every physical line at ``width`` characters (a conforming re-serialisation)."""
    out = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        chunks = [line[i : i + width] for i in range(0, len(line), width)] or [""]
        out.append("\r\n ".join(chunks))
    return "\r\n".join(out).encode("utf-8", "surrogateescape")


def _wrap(data: bytes, ctype: str, cte: str) -> bytes:
    if cte == "base64":
        body = base64.encodebytes(data)
    elif cte == "quoted-printable":
        body = quopri.encodestring(data)
    else:
        body = data
    return (
        b"From: someone@example.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\n"
        + f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode()
        + body
        + b"\r\n--XX--\r\n"
    )


VARIANTS = {
    "base64-text-calendar": lambda d: _wrap(d, "text/calendar; charset=utf-8", "base64"),
    "qp-application-ics": lambda d: _wrap(d, "application/ics", "quoted-printable"),
    "8bit-octet-stream": lambda d: _wrap(d, 'application/octet-stream; name="x.ics"', "8bit"),
    "refolded-40": lambda d: _refold(d, 40),
    "crlf": lambda d: d.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
    "lf": lambda d: d.replace(b"\r\n", b"\n"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bare_ics_survives_reencoding(variant: str) -> None:
    """Every bare .ics keeps its meaning when transported or serialised differently."""
    _require_corpus()
    for name in sorted(n for n in EXPECTED if n.endswith(".ics")):
        original = classify_bytes((CORPUS / name).read_bytes())
        changed = classify_bytes(VARIANTS[variant]((CORPUS / name).read_bytes()))
        assert (changed.kind, changed.replies, changed.uids) == (
            original.kind,
            original.replies,
            original.uids,
        ), name
