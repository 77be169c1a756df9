"""iMIP REQUEST/CANCEL builder: structure, time zones, and third-party validators
(ical.js via tests/tools and libical via Debian's python3-gi)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event, Timezone

from core.mail.ics import PRODID, EventSpec, build_cancel, build_request, vtimezone
from tests.support.paths import RUN

SYSTEM_PYTHON = "/usr/bin/python3"

BASE = EventSpec(
    uid="interview-42@recruitmail.example",
    sequence=0,
    summary="Gesprek Backend Engineer",
    description="Hoi Nina,\n\nWe zien je graag; tot dan, Ada.",
    starts_at=datetime(2026, 12, 15, 13, 0, tzinfo=UTC),
    ends_at=datetime(2026, 12, 15, 14, 0, tzinfo=UTC),
    timezone="Europe/Amsterdam",
    location=None,
    video_link="https://meet.example/abc",
    organizer_name="Ada Admin",
    organizer_email="itip+t0k3n@in.recruitmail.example",
    attendee_name="Nina de Vries",
    attendee_email="nina@example.org",
    dtstamp=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
)

# name: (zone, start UTC, end UTC, expected local DTSTART, expected local DTEND)
CASES: dict[str, tuple[str, datetime, datetime, str, str]] = {
    "amsterdam": ("Europe/Amsterdam", datetime(2026, 12, 15, 13, tzinfo=UTC),
                  datetime(2026, 12, 15, 14, tzinfo=UTC), "20261215T140000", "20261215T150000"),
    "new_york": ("America/New_York", datetime(2026, 12, 15, 13, tzinfo=UTC),
                 datetime(2026, 12, 15, 14, tzinfo=UTC), "20261215T080000", "20261215T090000"),
    "utc": ("UTC", datetime(2026, 12, 15, 13, tzinfo=UTC),
            datetime(2026, 12, 15, 14, tzinfo=UTC), "20261215T130000Z", "20261215T140000Z"),
    "kolkata": ("Asia/Kolkata", datetime(2026, 12, 15, 13, tzinfo=UTC),
                datetime(2026, 12, 15, 14, tzinfo=UTC), "20261215T183000", "20261215T193000"),
    # starts in winter time, ends in summer time (clocks go forward at 01:00 UTC)
    "amsterdam_dst": ("Europe/Amsterdam", datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
                      datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "20260329T013000",
                      "20260329T033000"),
    # starts in daylight time, ends in standard time (clocks go back at 06:00 UTC)
    "new_york_dst": ("America/New_York", datetime(2026, 11, 1, 4, 30, tzinfo=UTC),
                     datetime(2026, 11, 1, 7, 0, tzinfo=UTC), "20261101T003000",
                     "20261101T020000"),
    "sydney": ("Australia/Sydney", datetime(2027, 1, 10, 23, tzinfo=UTC),
               datetime(2027, 1, 11, 0, 15, tzinfo=UTC), "20270111T100000", "20270111T111500"),
    "casablanca": ("Africa/Casablanca", datetime(2026, 2, 20, 9, tzinfo=UTC),
                   datetime(2026, 2, 20, 10, tzinfo=UTC), "20260220T090000", "20260220T100000"),
}


@dataclass
class Built:
    spec: EventSpec
    request: str
    cancel: str
    request_path: Path
    cancel_path: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    folder = tmp_path_factory.mktemp("ics")
    out = {}
    for name, (zone, start, end, _, _) in CASES.items():
        spec = replace(BASE, uid=f"{name}-42@recruitmail.example", timezone=zone,
                       starts_at=start, ends_at=end)
        request = build_request(spec)
        cancel = build_cancel(replace(spec, sequence=1))
        request_path = folder / f"{name}-request.ics"
        cancel_path = folder / f"{name}-cancel.ics"
        request_path.write_bytes(request.encode())
        cancel_path.write_bytes(cancel.encode())
        out[name] = Built(spec, request, cancel, request_path, cancel_path)
    return out


def parse_event(text: str) -> tuple[Calendar, Event]:
    cal = Calendar.from_ical(text)
    [event] = cal.events
    return cal, event


def raw_lines(text: str) -> list[str]:
    """Unfolded content lines."""
    return text.replace("\r\n ", "").split("\r\n")


# --------------------------------------------------------------------------- structure


def test_request_has_every_imip_property(built: dict[str, Built]) -> None:
    cal, event = parse_event(built["amsterdam"].request)
    assert str(cal["PRODID"]) == PRODID
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["CALSCALE"]) == "GREGORIAN"
    assert str(cal["METHOD"]) == "REQUEST"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Amsterdam"]
    assert str(event["UID"]) == "amsterdam-42@recruitmail.example"
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTAMP") == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Gesprek Backend Engineer"
    assert str(event["DESCRIPTION"]) == (
        "Hoi Nina,\n\nWe zien je graag; tot dan, Ada.\n\nVideo: https://meet.example/abc")
    assert str(event["LOCATION"]) == "https://meet.example/abc"
    assert str(event["URL"]) == "https://meet.example/abc"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["TRANSP"]) == "OPAQUE"
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:itip+t0k3n@in.recruitmail.example"
    assert organizer.params["CN"] == "Ada Admin"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:nina@example.org"
    assert dict(attendee.params) == {"CN": "Nina de Vries", "ROLE": "REQ-PARTICIPANT",
                                     "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE",
                                     "CUTYPE": "INDIVIDUAL"}
    lines = raw_lines(built["amsterdam"].request)
    assert "DTSTART;TZID=Europe/Amsterdam:20261215T140000" in lines
    assert "DTEND;TZID=Europe/Amsterdam:20261215T150000" in lines
    assert "DTSTAMP:20261201T093000Z" in lines


def test_cancel_keeps_uid_and_takes_the_given_sequence(built: dict[str, Built]) -> None:
    cal, event = parse_event(built["amsterdam"].cancel)
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(event["UID"]) == "amsterdam-42@recruitmail.example"
    assert event["SEQUENCE"] == 1
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["ATTENDEE"]) == "mailto:nina@example.org"
    assert "RSVP" not in event["ATTENDEE"].params
    assert str(event["ORGANIZER"]) == "mailto:itip+t0k3n@in.recruitmail.example"
    assert cal.walk("VTIMEZONE")


@pytest.mark.parametrize("name", list(CASES))
def test_crlf_and_folding(built: dict[str, Built], name: str) -> None:
    for text in (built[name].request, built[name].cancel):
        assert text.endswith("\r\n")
        assert "\n" not in text.replace("\r\n", "") and "\r" not in text.replace("\r\n", "")
        assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))


def test_long_utf8_text_is_folded_at_75_octets() -> None:
    spec = replace(BASE, summary="Sollicitatiegesprek — één, twee; drie " * 6,
                   description="Ünïcödé tëxt with ümlauts and € signs. " * 30)
    text = build_request(spec)
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    _, event = parse_event(text)
    assert str(event["DESCRIPTION"]).startswith("Ünïcödé tëxt with ümlauts and € signs. Ünï")


@pytest.mark.parametrize("name", list(CASES))
def test_times_in_the_event_zone(built: dict[str, Built], name: str) -> None:
    zone, start, end, local_start, local_end = CASES[name]
    for text in (built[name].request, built[name].cancel):
        cal, event = parse_event(text)
        lines = raw_lines(text)
        if zone == "UTC":
            assert f"DTSTART:{local_start}" in lines and f"DTEND:{local_end}" in lines
            assert not cal.walk("VTIMEZONE")
        else:
            assert f"DTSTART;TZID={zone}:{local_start}" in lines
            assert f"DTEND;TZID={zone}:{local_end}" in lines
            assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == [zone]
        assert event.decoded("DTSTART") == start
        assert event.decoded("DTEND") == end


# --------------------------------------------------------------------------- VTIMEZONE


@pytest.mark.parametrize("zone", [
    "Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "Australia/Sydney",
    "Africa/Casablanca", "America/Santiago", "Europe/Dublin", "Pacific/Chatham",
    "Asia/Kathmandu", "America/Sao_Paulo", "Europe/London", "America/St_Johns",
])
def test_vtimezone_matches_tzdata_around_the_event(zone: str) -> None:
    component = vtimezone(zone, ZoneInfo(zone), date(2026, 12, 15), date(2026, 12, 15))
    reparsed = Timezone.from_ical(component.to_ical())
    assert isinstance(reparsed, Timezone)
    parsed = reparsed.to_tz()
    moment, stop = datetime(2025, 1, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)
    while moment < stop:
        expected = moment.astimezone(ZoneInfo(zone)).utcoffset()
        assert moment.astimezone(parsed).utcoffset() == expected, (zone, moment)
        moment += timedelta(minutes=97)


def test_vtimezone_onsets_are_wall_clock_before_the_change() -> None:
    text = vtimezone("Europe/Amsterdam", ZoneInfo("Europe/Amsterdam"), date(2026, 12, 15),
                     date(2026, 12, 15)).to_ical().decode()
    assert "BEGIN:DAYLIGHT\r\nDTSTART:20250330T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;" \
           "BYMONTH=3\r\nTZNAME:CEST\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200" in text
    assert "DTSTART:20251026T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n" \
           "TZNAME:CET\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100" in text
    text = vtimezone("America/New_York", ZoneInfo("America/New_York"), date(2026, 12, 15),
                     date(2026, 12, 15)).to_ical().decode()
    assert "DTSTART:20250309T020000\r\nRRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3" in text
    assert "DTSTART:20251102T020000\r\nRRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11" in text


# --------------------------------------------------------------------------- content


def test_location_video_and_url() -> None:
    both = replace(BASE, location="Keizersgracht 1, Amsterdam")
    _, event = parse_event(build_request(both))
    assert str(event["LOCATION"]) == "Keizersgracht 1, Amsterdam"
    assert str(event["URL"]) == "https://meet.example/abc"
    already = replace(BASE, description="Join at https://meet.example/abc please")
    _, event = parse_event(build_request(already))
    assert str(event["DESCRIPTION"]) == "Join at https://meet.example/abc please"
    for bad in ("javascript:alert(1)", "meet.example/abc", "https://", "https://a b.example"):
        _, event = parse_event(build_request(replace(BASE, video_link=bad)))
        assert "URL" not in event
        assert str(event["DESCRIPTION"]).endswith(f"Video: {bad}")
    _, event = parse_event(build_request(replace(BASE, video_link=None, location=None)))
    assert "URL" not in event and "LOCATION" not in event
    assert "Video" not in str(event["DESCRIPTION"])


def test_text_and_names_are_escaped() -> None:
    spec = replace(BASE, summary="Interview: a, b; c\r\nBCC: x", attendee_name='Nina "N" de Vries',
                   organizer_name="Acme, Recruiting; Team", location="Room 1; floor 2, left",
                   description="Line 1\r\nLine 2\x00\x07 end")
    text = build_request(spec)
    assert "\r\nBCC" not in text
    _, event = parse_event(text)
    assert str(event["SUMMARY"]) == "Interview: a, b; c BCC: x"
    assert str(event["DESCRIPTION"]).startswith("Line 1\nLine 2 end")
    assert str(event["LOCATION"]) == "Room 1; floor 2, left"
    assert event["ATTENDEE"].params["CN"] == "Nina 'N' de Vries"
    assert event["ORGANIZER"].params["CN"] == "Acme, Recruiting; Team"


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError):
        build_request(replace(BASE, attendee_email="nina@example.org\r\nBcc: x@y.z"))
    with pytest.raises(ValueError):
        build_request(replace(BASE, organizer_email="not an address"))
    with pytest.raises(ValueError):
        build_request(replace(BASE, ends_at=BASE.starts_at))
    with pytest.raises(ValueError):
        build_request(replace(BASE, sequence=-1))
    with pytest.raises(ValueError):
        build_cancel(replace(BASE, uid="  "))
    with pytest.raises(ValueError):
        build_request(replace(BASE, status="MAYBE\r\nX"))
    _, event = parse_event(build_request(replace(BASE, status="tentative")))
    assert str(event["STATUS"]) == "TENTATIVE"


def test_defaults_unknown_zone_naive_times_and_mailto() -> None:
    spec = replace(BASE, timezone="Mars/Olympus_Mons", dtstamp=None,
                   starts_at=datetime(2026, 12, 15, 13), ends_at=datetime(2026, 12, 15, 14),
                   attendee_email="MAILTO:Nina@Example.org")
    before = datetime.now(UTC).replace(microsecond=0)
    text = build_request(spec)
    cal, event = parse_event(text)
    assert not cal.walk("VTIMEZONE")
    assert "DTSTART:20261215T130000Z" in raw_lines(text)
    assert before <= event.decoded("DTSTAMP") <= datetime.now(UTC)
    assert str(event["ATTENDEE"]) == "mailto:Nina@Example.org"


# --------------------------------------------------------------------------- validators


def _tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUN), *map(str, args)], capture_output=True, text=True,
                          timeout=900, check=False)


def _all_files(built: dict[str, Built]) -> list[Path]:
    return [p for b in built.values() for p in (b.request_path, b.cancel_path)]


def test_ical_js_strict(built: dict[str, Built]) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: ical.js check skipped")
    result = _tool("ics-check.mjs", *_all_files(built), "--strict")
    assert result.returncode in (0, 2, 3), f"ical.js tool could not run: {result.stderr[-500:]}"
    assert result.returncode == 0, result.stdout + result.stderr
    for b in built.values():
        assert f"{b.request_path}: METHOD=REQUEST VEVENTs=1" in result.stdout
        assert f"{b.cancel_path}: METHOD=CANCEL VEVENTs=1" in result.stdout
    assert "ERROR" not in result.stdout
    assert "DTSTART=2026-12-15T14:00:00 (Europe/Amsterdam) TZID=Europe/Amsterdam" \
        in result.stdout


@pytest.fixture(scope="module")
def libical(built: dict[str, Built]) -> subprocess.CompletedProcess[str]:
    result = _tool("ics-libical.py", *_all_files(built))
    assert result.returncode in (0, 2, 3), (
        f"libical (python3-gi, gir1.2-ical-3.0; tests/tools/install) unavailable: "
        f"{result.stderr[-500:]}")
    return result


def test_libical_finds_no_errors(built: dict[str, Built],
                                 libical: subprocess.CompletedProcess[str]) -> None:
    assert libical.returncode == 0, libical.stdout + libical.stderr
    for b in built.values():
        assert f"{b.request_path}: METHOD=REQUEST errors=0" in libical.stdout
        assert f"{b.cancel_path}: METHOD=CANCEL errors=0" in libical.stdout


LIBICAL_INSTANTS = textwrap.dedent("""
    import sys, gi
    gi.require_version("ICalGLib", "3.0")
    from gi.repository import ICalGLib as I
    for path in sys.argv[1:]:
        cal = I.Component.new_from_string(open(path, encoding="utf-8").read())
        ev = cal.get_first_component(I.ComponentKind.VEVENT_COMPONENT)
        out = []
        for t in (ev.get_dtstart(), ev.get_dtend()):
            zone = t.get_timezone() or I.Timezone.get_utc_timezone()
            out.append(str(I.Time.as_timet_with_zone(t, zone)))
        print(path, *out)
""")


def test_libical_reads_the_same_instants(built: dict[str, Built],
                                         libical: subprocess.CompletedProcess[str]) -> None:
    """libical resolves DTSTART/DTEND through our VTIMEZONE (not its own zone data)."""
    files = _all_files(built)
    result = subprocess.run([SYSTEM_PYTHON, "-c", LIBICAL_INSTANTS, *map(str, files)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    seen = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    for b in built.values():
        expected = [str(int(b.spec.starts_at.timestamp())), str(int(b.spec.ends_at.timestamp()))]
        assert seen[str(b.request_path)] == expected, b.request_path.name
        assert seen[str(b.cancel_path)] == expected, b.cancel_path.name


LIBICAL_CONVERT = textwrap.dedent("""
    import sys, gi
    gi.require_version("ICalGLib", "3.0")
    from gi.repository import ICalGLib as I
    cal = I.Component.new_from_string(open(sys.argv[1], encoding="utf-8").read())
    zone = I.Timezone.new()
    zone.set_component(cal.get_first_component(I.ComponentKind.VTIMEZONE_COMPONENT).clone())
    for instant in sys.argv[2:]:
        t = I.Time.new_from_string(instant)
        I.Time.convert_to_zone_inplace(t, zone)
        print(instant, t.as_ical_string())
""")


def test_libical_converts_utc_across_the_dst_change(
        built: dict[str, Built], libical: subprocess.CompletedProcess[str]) -> None:
    """The daylight onset is 02:00 local (before the change): libical must put 01:15 UTC
    on 29 March 2026 at 03:15 CEST, not at the non-existent 02:15."""
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", LIBICAL_CONVERT, str(built["amsterdam_dst"].request_path),
         "20260329T005900Z", "20260329T011500Z", "20261025T003000Z", "20261025T011500Z"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == [
        "20260329T005900Z 20260329T015900", "20260329T011500Z 20260329T031500",
        "20261025T003000Z 20261025T023000", "20261025T011500Z 20261025T021500"]
