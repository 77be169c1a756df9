"""Document bytes on disk under RECRUITMAIL_BLOB_DIR, addressed by an opaque key."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from core.settings import get_settings


def _root() -> Path:
    return Path(get_settings().blob_dir)


def blob_path(key: str) -> Path:
    if "/" in key or "\\" in key or key.startswith("."):
        raise ValueError(f"bad blob key {key!r}")
    return _root() / key[:2] / key


def new_key() -> str:
    return uuid.uuid4().hex


class BlobWriter:
    """Streams bytes to a temporary file; commit() makes it visible, abort() removes it."""

    def __init__(self, limit: int) -> None:
        self.key = new_key()
        self.limit = limit
        self.size = 0
        self.sha = hashlib.sha256()
        self.final = blob_path(self.key)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.with_suffix(".part")
        self.fh = open(self.tmp, "wb")

    def write(self, chunk: bytes) -> bool:
        """False (and nothing more written) once the limit is passed."""
        self.size += len(chunk)
        if self.size > self.limit:
            return False
        self.sha.update(chunk)
        self.fh.write(chunk)
        return True

    def commit(self) -> str:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.final)
        return self.key

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


def read_blob(key: str) -> bytes:
    return blob_path(key).read_bytes()


def delete_blob(key: str) -> None:
    blob_path(key).unlink(missing_ok=True)
