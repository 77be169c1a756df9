"""Builders of iCalendar text and MIME mail for the iMIP/iTIP parser's unit tests: ``ics``
(a VCALENDAR), ``event`` (a VEVENT's lines), ``ACCEPT`` (an accepting REPLY) and ``mail``
(a multipart mail from its parts)."""

from __future__ import annotations

CRLF = "\r\n"


def ics(*body: str, method: str | None = "REPLY") -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    if method:
        head.append(f"METHOD:{method}")
    return CRLF.join([*head, *body, "END:VCALENDAR", ""])


def event(*lines: str, uid: str = "uid-1@example.test") -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260803T145144Z", *lines, "END:VEVENT"]


ACCEPT = ics(*event("SEQUENCE:2", "ATTENDEE;PARTSTAT=ACCEPTED;CN=Beth:mailto:Beth@Example.TEST"))


def mail(*parts: tuple[str, str, bytes], headers: str = "", top: str = "multipart/mixed") -> bytes:
    """A multipart mail from (content-type line, transfer encoding, body) triples."""
    out = [
        "From: Beth <beth@example.test>",
        "To: jobs@acme.example",
        "Subject: Accepted: Interview",
        "MIME-Version: 1.0",
        *([headers] if headers else []),
        f'Content-Type: {top}; boundary="BOUND"',
        "",
        "preamble",
    ]
    raw = CRLF.join(out).encode()
    for ctype, cte, body in parts:
        head = f"{CRLF}--BOUND{CRLF}Content-Type: {ctype}{CRLF}"
        if cte:
            head += f"Content-Transfer-Encoding: {cte}{CRLF}"
        raw += head.encode() + CRLF.encode() + body
    return raw + f"{CRLF}--BOUND--{CRLF}".encode()
