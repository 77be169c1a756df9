"""What the worker writes after DATA is what aiosmtplib's rules make of the mail: CRLF line
ends, leading periods doubled, the final "." line, whichever way the bytes get there."""

from __future__ import annotations

import itertools

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from worker.transport import wire_content


def _by_the_rules(data: bytes) -> bytes:
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"


def test_every_short_mix_of_line_ends_and_periods() -> None:
    # Every string of up to 7 of these bytes: lone CR and LF, CRLF, CR CR LF, periods at
    # the start, after a line end, after a lone CR, at the end.
    for n in range(8):
        for chars in itertools.product(b"a.\r\n", repeat=n):
            data = bytes(chars)
            assert wire_content(data) == _by_the_rules(data), data


def test_a_built_mail_goes_as_it_is_and_a_dot_line_is_escaped() -> None:
    mail = b"Subject: x\r\n\r\nline one\r\n" + b"y" * 70 + b"\r\n"
    assert wire_content(mail) == mail + b".\r\n"
    dotted = b"Subject: x\r\n\r\n.\r\n..\r\n.hidden\r\n"
    assert wire_content(dotted) == b"Subject: x\r\n\r\n..\r\n...\r\n..hidden\r\n.\r\n"
    assert wire_content(b"no end") == b"no end\r\n.\r\n"
