"""The dev mail catcher: an SMTP server that keeps every mail as a file under var/mail."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class CatcherHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.index = folder / "index.jsonl"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content or b""
        data = content.encode() if isinstance(content, str) else bytes(content)
        at = datetime.now(UTC)
        name = f"{at.strftime('%Y%m%dT%H%M%S.%f')}.eml"
        (self.folder / name).write_bytes(data)
        msg = message_from_bytes(data, policy=policy.default)
        entry: dict[str, Any] = {
            "file": name,
            "at": at.isoformat(),
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_tos),
            "subject": str(msg.get("Subject", "")),
            "from": str(msg.get("From", "")),
        }
        with self.index.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
        return "250 2.0.0 Kept by the dev catcher"


async def start_catcher(folder: Path, host: str = "127.0.0.1", port: int = 1025) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    handler = CatcherHandler(folder)
    return await loop.create_server(
        lambda: SMTP(handler, hostname="catcher.localhost", loop=loop), host=host, port=port
    )


