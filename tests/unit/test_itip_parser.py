"""Edge cases and hostile input for core.mail.itip (the corpus test covers real clients)."""

from __future__ import annotations

import base64
import email
import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message

import pytest

from core.mail.ical_lines import parse_line, unescape_text, unfold
from core.mail.itip import (
    InboundCalendar,
    classify_bytes,
    classify_message,
    is_delivery_status_notification,
    parse_calendar_bytes,
)

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


# ------------------------------------------------------------------ replies


def test_reply_fields() -> None:
    result = parse_calendar_bytes(ACCEPT.encode())
    assert result.kind == "reply"
    assert result.method == "REPLY"
    assert result.uids == ["uid-1@example.test"]
    (reply,) = result.replies
    assert reply.attendee == "beth@example.test"
    assert reply.partstat == "ACCEPTED"
    assert reply.comment is None
    assert reply.sequence == 2
    assert reply.recurrence_id is None
    assert reply.dtstamp == datetime(2026, 8, 3, 14, 51, 44, tzinfo=UTC)


def test_google_x_response_comment_folded_after_mailto() -> None:
    data = ics(
        *event(
            "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED;CN=Beth ",
            ' Round;X-NUM-GUESTS=0;X-RESPONSE-COMMENT="Declined because it&#39\\;s la',
            ' te":mailto',
            " :beth@example.test",
        )
    )
    (reply,) = parse_calendar_bytes(data).replies
    assert (reply.attendee, reply.partstat) == ("beth@example.test", "DECLINED")
    assert reply.comment == "Declined because it's late"


def test_unquoted_x_response_comment_with_comma() -> None:
    data = ics(*event("ATTENDEE;PARTSTAT=TENTATIVE;X-RESPONSE-COMMENT=maybe, later:mailto:a@b.c"))
    assert parse_calendar_bytes(data).replies[0].comment == "maybe, later"


def test_comment_property_wins_and_is_unescaped() -> None:
    data = ics(
        *event(
            'ATTENDEE;PARTSTAT=ACCEPTED;X-RESPONSE-COMMENT="param":MAILTO:ana@example.test',
            "COMMENT;LANGUAGE=en-US:Uh huh\\, here\\;s my\\Ncomment\\n",
        )
    )
    assert parse_calendar_bytes(data).replies[0].comment == "Uh huh, here;s my\ncomment"


def test_empty_comment_is_none() -> None:
    data = ics(*event("ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@b.c", "COMMENT;LANGUAGE=de-DE:\\n"))
    assert parse_calendar_bytes(data).replies[0].comment is None


def test_one_reply_per_attendee_and_instance() -> None:
    data = ics(
        *event(
            "RECURRENCE-ID:20260804T140000Z",
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@x.test",
            "ATTENDEE:mailto:b@x.test",
        ),
        *event("RECURRENCE-ID:20260805T140000Z", "ATTENDEE;PARTSTAT=DECLINED:mailto:a@x.test"),
    )
    replies = parse_calendar_bytes(data).replies
    assert [(r.attendee, r.partstat, r.recurrence_id) for r in replies] == [
        ("a@x.test", "ACCEPTED", "20260804T140000Z"),
        ("b@x.test", "NEEDS-ACTION", "20260804T140000Z"),
        ("a@x.test", "DECLINED", "20260805T140000Z"),
    ]


@pytest.mark.parametrize(
    "line, address",
    [
        ("ATTENDEE;PARTSTAT=ACCEPTED:MAILTO:UPPER@EXAMPLE.TEST", "upper@example.test"),
        ("ATTENDEE;PARTSTAT=ACCEPTED:bare@example.test", "bare@example.test"),
        ('ATTENDEE;EMAIL="real@example.test":/1234/principal/', "real@example.test"),
        ("ATTENDEE;SENT-BY=mailto:boss@x.test;PARTSTAT=ACCEPTED:mailto:me@x.test", "me@x.test"),
        ('ATTENDEE;CN="Doe, Jane: \\"J\\"";PARTSTAT=ACCEPTED:mailto:jane@x.test', "jane@x.test"),
        ("ATTENDEE;PARTSTAT=ACCEPTED:mailto:Jane Doe <jane@x.test>", "jane@x.test"),
        ("ATTENDEE;PARTSTAT=ACCEPTED:CN=X:mailto:cn-in-value@x.test", "cn-in-value@x.test"),
    ],
)
def test_attendee_address_forms(line: str, address: str) -> None:
    (reply,) = parse_calendar_bytes(ics(*event(line))).replies
    assert reply.attendee == address
    assert reply.partstat == ("NEEDS-ACTION" if "EMAIL=" in line else "ACCEPTED")


def test_unfolding_variants() -> None:
    raw = 'A:one\r\n two\nB;X="q\n uoted":x\n\tyz\nC:Inbox\r\n  Apptest\nraw continuation\n'
    assert unfold(raw) == ["A:onetwo", 'B;X="quoted":xyz', "C:Inbox Apptest\nraw continuation"]
    line = parse_line('attendee;partstat=needs-action;cn="a;b:c":mailto:a@b')
    assert line is not None and line.name == "ATTENDEE"
    assert (line.param("PARTSTAT"), line.param("cn"), line.value) == (
        "needs-action",
        "a;b:c",
        "mailto:a@b",
    )
    assert unescape_text("a\\,b\\;c\\nd\\Ne\\\\f\\x") == "a,b;c\nd\ne\\f\\x"


def test_fold_inside_partstat_and_address() -> None:
    data = ics(*event("ATTENDEE;PARTSTAT=ACCE", " PTED;CN=X:mailto:markus@uk-koe", " ln.de"))
    (reply,) = parse_calendar_bytes(data).replies
    assert (reply.attendee, reply.partstat) == ("markus@uk-koeln.de", "ACCEPTED")


def test_vcalendar_method_wins_over_mime_param() -> None:
    raw = mail(("text/calendar; method=REQUEST; charset=utf-8", "", ACCEPT.encode()))
    result = classify_bytes(raw)
    assert (result.kind, result.method) == ("reply", "REPLY")


def test_mime_method_without_vcalendar_method_is_no_method() -> None:
    body = ics(*event("ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@b.c"), method=None)
    result = classify_bytes(mail(('text/calendar; METHOD="REPLY"', "", body.encode())))
    assert (result.kind, result.method, result.replies) == ("no-method", "REPLY", [])


def test_reply_without_event_and_unknown_method() -> None:
    freebusy = ics("BEGIN:VFREEBUSY", "UID:fb", "END:VFREEBUSY")
    assert parse_calendar_bytes(freebusy).kind == "reply-without-event"
    assert parse_calendar_bytes(ics(*event(), method="X-WHATEVER")).kind == "no-method"
    assert parse_calendar_bytes(ics(*event(), method=" cancel ")).kind == "cancel"


def test_counter_gives_attendee_and_proposal() -> None:
    data = ics(
        *event(
            "ATTENDEE;PARTSTAT=TENTATIVE:mailto:cand@x.test",
            "DTSTART;TZID=W. Europe Standard Time:20260110T100000",
            "DTEND;TZID=W. Europe Standard Time:20260110T110000",
            "COMMENT:Could we do Saturday?",
            "X-MS-OLK-ORIGINALSTART;TZID=W. Europe Standard Time:20260109T100000",
        ),
        method="COUNTER",
    )
    result = parse_calendar_bytes(data)
    assert result.kind == "counter"
    assert [(r.attendee, r.comment) for r in result.replies] == [
        ("cand@x.test", "Could we do Saturday?")
    ]
    (proposal,) = result.proposals
    assert (proposal.dtstart, proposal.dtend, proposal.tzid) == (
        "20260110T100000",
        "20260110T110000",
        "W. Europe Standard Time",
    )


def test_still_quoted_printable_calendar_is_not_trusted() -> None:
    data = ics(
        "BEGIN:VEVENT",
        "UID:x",
        "ATTENDEE;RSVP=3DTRUE;ROLE=3DREQ-PARTICIPANT;PARTSTAT=3DACCEPTED:mailto:a@b.c",
        "RRULE:FREQ=3DYEARLY",
        "END:VEVENT",
    )
    assert parse_calendar_bytes(data).kind == "no-method"
    single = ics(*event("ATTENDEE;CN=3D Systems;PARTSTAT=ACCEPTED:mailto:a@b.c"))
    assert parse_calendar_bytes(single).kind == "reply"


# ------------------------------------------------------------------ MIME


def test_base64_quoted_printable_and_broken_quoted_printable() -> None:
    b64 = base64.encodebytes(ACCEPT.encode())
    assert classify_bytes(mail(("text/calendar", "Base64", b64))).kind == "reply"
    qp = ACCEPT.replace("=", "=3D").replace("\r\n", "=0D=0A=\r\n").encode()
    assert classify_bytes(mail(("text/calendar", "quoted-printable", qp))).replies[0].partstat == (
        "ACCEPTED"
    )
    broken = mail(("text/calendar; charset=utf-8", "quoted-printable", ACCEPT.encode()))
    (reply,) = classify_bytes(broken).replies  # "=AC" of PARTSTAT=ACCEPTED must survive
    assert (reply.partstat, reply.attendee) == ("ACCEPTED", "beth@example.test")


def test_undeclared_8bit_charset_and_utf16() -> None:
    body = ics(*event("ATTENDEE;PARTSTAT=DECLINED:mailto:a@b.c", "COMMENT:Grüße, Jürgen"))
    for encoded in (body.encode("cp1252"), body.encode("utf-8")):
        result = classify_bytes(mail(("text/calendar; charset=x-unknown-foo", "8bit", encoded)))
        assert result.replies[0].comment == "Grüße, Jürgen"
    assert parse_calendar_bytes(body.encode("utf-16")).replies[0].comment == "Grüße, Jürgen"
    assert classify_bytes(b"\xef\xbb\xbf \r\n" + body.encode()).kind == "reply"


@pytest.mark.parametrize(
    "ctype",
    [
        'application/octet-stream; name="invite.ICS"',
        "application/octet-stream",
        "TeXt/X-vCalendar",
        "application/ics",
        'text/plain; name="reply.ics"',
    ],
)
def test_calendar_part_types(ctype: str) -> None:
    assert classify_bytes(mail((ctype, "base64", base64.encodebytes(ACCEPT.encode())))).kind == (
        "reply"
    )


def test_text_plain_body_is_not_sniffed_and_plain_mail_is_none() -> None:
    assert classify_bytes(mail(("text/plain", "", ACCEPT.encode()))).kind == "none"
    assert classify_bytes(b"From: a@b.c\r\nSubject: hi\r\n\r\nhello").kind == "none"


def test_duplicate_calendar_parts_give_one_reply() -> None:
    raw = mail(
        ("text/calendar; method=REPLY", "8bit", ACCEPT.encode()),
        ("application/ics; name=invite.ics", "base64", base64.encodebytes(ACCEPT.encode())),
        ("application/ics", "8bit", ACCEPT.replace("\r\n", "\n").encode()),
    )
    assert len(classify_bytes(raw).replies) == 1


def test_forwarded_invitation_and_reply_quoting_invitation() -> None:
    invite = ics(*event("ATTENDEE:mailto:a@b.c"), method="REQUEST").encode()
    inner = b"Subject: inv\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + invite
    assert classify_bytes(mail(("message/rfc822", "", inner))).kind == "request"
    both = mail(("message/rfc822", "", inner), ("text/calendar", "", ACCEPT.encode()))
    assert classify_bytes(both).kind == "reply"


def test_toplevel_text_calendar_and_email_message_input() -> None:
    raw = b"From: a@b.c\r\nContent-Type: text/calendar;\r\n\tmethod=REPLY\r\n\r\n" + ACCEPT.encode()
    assert classify_bytes(raw).kind == "reply"
    msg = EmailMessage()
    msg["From"] = "beth@example.test"
    msg.set_content("see attachment")
    msg.add_attachment(ACCEPT.encode(), maintype="text", subtype="calendar", filename="r.ics")
    assert classify_message(msg).replies[0].attendee == "beth@example.test"
    parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert classify_message(parsed).kind == "reply"


# ------------------------------------------------------------------ bounces


def _report(report_type: str, quoted: bytes, sender: str = "MAILER-DAEMON@mx.example") -> bytes:
    return mail(
        ("text/plain", "", b"Your message could not be delivered."),
        ("message/delivery-status" if report_type == "delivery-status" else "text/plain", "", b""),
        ("message/rfc822", "", b"Content-Type: text/calendar; method=REPLY\r\n\r\n" + quoted),
        headers=f"Return-Path: <>\r\nX-Sender-Hint: {sender}",
        top=f"multipart/report; report-type={report_type}",
    ).replace(b"From: Beth <beth@example.test>", f"From: {sender}".encode())


def test_dsn_quoting_a_reply_is_a_bounce() -> None:
    result = classify_bytes(_report("delivery-status", ACCEPT.encode()))
    assert (result.kind, result.method, result.replies) == ("bounce", None, [])
    assert result.uids == ["uid-1@example.test"]


def test_read_receipt_report_is_not_a_bounce_nor_a_reply() -> None:
    raw = _report("disposition-notification", ACCEPT.encode(), sender="beth@example.test")
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    assert not is_delivery_status_notification(msg)
    assert classify_message(msg).kind == "none"


@pytest.mark.parametrize(
    "headers, body",
    [
        ("From: MAILER-DAEMON@mx.example\r\nSubject: failure notice", "Hi. This is qmail-send."),
        ("From: postmaster@x.test\r\nSubject: Undeliverable: Accepted: Interview", "sorry"),
        ("From: a@b.c\r\nX-Failed-Recipients: gone@x.test\r\nSubject: x", "x"),
        ("From: Mail Delivery System <x@y.z>\r\nSubject: hi", "Diagnostic-Code: smtp; 550"),
    ],
)
def test_bounce_heuristics(headers: str, body: str) -> None:
    raw = (
        mail(
            ("text/plain", "", body.encode()),
            ("text/calendar", "", ACCEPT.encode()),
            headers=headers,
        )
        .replace(b"From: Beth <beth@example.test>\r\n", b"")
        .replace(b"Subject: Accepted: Interview\r\n", b"")
    )
    assert classify_bytes(raw).kind == "bounce"


def test_ordinary_reply_is_not_a_bounce() -> None:
    raw = mail(("text/calendar; method=REPLY", "", ACCEPT.encode()), headers="Return-Path: <>")
    assert not is_delivery_status_notification(email.message_from_bytes(raw))
    assert classify_bytes(raw).kind == "reply"


# ------------------------------------------------------------------ hostile input


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
