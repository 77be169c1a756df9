"""Edge cases for core.mail.itip's calendar parsing: replies, attendees, comments, unfolding,
methods and COUNTER proposals (the corpus test covers real clients; MIME, bounces and
hostile input have their own files)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.mail.ical_lines import parse_line, unescape_text, unfold
from core.mail.itip import classify_bytes, parse_calendar_bytes
from tests.support.itip_mail import ACCEPT, event, ics, mail


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
