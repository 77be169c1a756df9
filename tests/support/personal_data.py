"""Looking for a candidate's personal data wherever it is stored (pg_dump, sqlite .dump, the
raw SQLite file and its WAL, the blob directory), and the test candidate Zebulon whose
every trace anonymisation must erase."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a EnvInfo imported for real would be collected as a test class
    from tests.conftest import EnvInfo


ZEB_EMAIL = "zebulon.quixotic@example.org"
# Everything of Zebulon's that must vanish (lower case; searched case-insensitively).
SECRETS = [
    "zebulon", "quixotic", "kumquat", "marmalade-ostrich", "zq-second", "xylophone-tangerine",
    "platypus", "narwhal", "wombat", "bounced-llama",
]


_HEX_BLOBS = [re.compile(rb"X'([0-9a-fA-F]+)'"), re.compile(rb"\\\\x([0-9a-fA-F]+)")]


def _with_decoded_blobs(dump: bytes) -> bytes:
    """Binary columns appear hex-encoded in dumps (bytea \\x..., sqlite X'...'): decode."""
    out = [dump]
    for pat in _HEX_BLOBS:
        for m in pat.finditer(dump):
            hexdigits = m.group(1)
            if len(hexdigits) % 2 == 0:
                out.append(bytes.fromhex(hexdigits.decode()))
    return b"\n".join(out).lower()


def _database_views(env: EnvInfo) -> dict[str, bytes]:
    """name -> lower-cased bytes of every way of looking at the stored data."""
    if env.backend == "postgres":
        dump = subprocess.run(["pg_dump", "--no-owner", env.database_url], check=True,
                              capture_output=True, timeout=60).stdout
        return {"pg_dump": _with_decoded_blobs(dump)}
    path = Path(env.database_url[len("sqlite://"):])
    con = sqlite3.connect(path)
    try:
        dump = "\n".join(con.iterdump()).encode()
    finally:
        con.close()
    views = {"sqlite .dump": _with_decoded_blobs(dump)}
    for suffix in ("", "-wal", "-journal"):
        f = Path(str(path) + suffix)
        if f.exists():
            views[f"raw file {f.name}"] = f.read_bytes().lower()
    return views


def _blob_files(env: EnvInfo) -> dict[str, bytes]:
    root = env.tmp / "blobs"
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.read_bytes().lower()
    return out


def _found(views: dict[str, bytes], needles: list[str]) -> list[tuple[str, str]]:
    return [(where, n) for where, data in views.items() for n in needles if n.encode() in data]
