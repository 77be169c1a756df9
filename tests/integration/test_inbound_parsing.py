"""Reading replies (no sockets, no database): quoted history, auto-replies, charsets,
attachments. Kept beside the gateway tests because it is the gateway's reading."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import compat32

import pytest

from core.services.inbound import QUOTE_MARKER, safe_text, split_reply_body
from inbound.parsing import parse_mail
from inbound.replies import auto_reply_reason, mark_quoted
from inbound.text import decode_bytes, html_to_text


@pytest.mark.parametrize(
    ("text", "written", "quoted_start"),
    [
        ("Yes, Tuesday works.\n\nOn Mon, Jan 5, 2026 at 10:00 AM Ada Admin <ada@acme.example>\n"
         "wrote:\n> Does Tuesday work?\n", "Yes, Tuesday works.", "On Mon, Jan 5"),
        ("Ja, passt.\n\nAm 05.01.2026 um 10:00 schrieb Ada Admin <ada@acme.example>:\n> Passt?\n",
         "Ja, passt.", "Am 05.01.2026"),
        ("Oui.\n\nLe lun. 5 janv. 2026 à 10:00, Ada <ada@acme.example> a écrit :\n> Ok ?\n",
         "Oui.", "Le lun. 5 janv."),
        ("Fine by me.\n\n-----Original Message-----\nFrom: Ada Admin\nSent: Monday\n"
         "Subject: Interview\n\nDoes Tuesday work?\n", "Fine by me.", "-----Original Message-----"),
        ("Fine.\n\n________________________________\nFrom: Ada Admin <ada@acme.example>\n"
         "Sent: Monday, January 5, 2026 10:00\nTo: Nina\nSubject: Interview\n\nText\n",
         "Fine.", "________________________________"),
        ("Sure.\r\n\r\nVon: Ada Admin\r\nGesendet: Montag, 5. Januar 2026\r\nAn: Nina\r\n"
         "Betreff: Interview\r\n", "Sure.", "Von: Ada Admin"),
        ("> Does Tuesday work?\nYes.\n> And Wednesday?\nNo.\n\n> Thanks\n> Ada\n",
         "> Does Tuesday work?\nYes.\n> And Wednesday?\nNo.", "> Thanks"),
    ],
)
def test_quoted_history_is_marked(text: str, written: str, quoted_start: str) -> None:
    body, found = mark_quoted(text)
    assert found
    head, quoted = split_reply_body(body)
    assert head == written
    assert quoted is not None and quoted.startswith(quoted_start)
    # Nothing was removed: the marker line is the only addition.
    norm = text.replace("\r\n", "\n").strip("\n")
    assert body.replace(f"{QUOTE_MARKER}\n", "").replace("\n", "") == norm.replace("\n", "")


def test_no_quote_no_marker() -> None:
    body, found = mark_quoted("Just a note.\nOn my way, see you Monday.\n")
    assert not found and QUOTE_MARKER not in body
    assert split_reply_body(body) == (body, None)


def test_html_blockquote_becomes_quoted_lines() -> None:
    text = html_to_text("<p>Yes</p><div>On Mon, Ada wrote:<blockquote><p>Tuesday?</p>"
                        "<blockquote>older</blockquote></blockquote></div>"
                        "<script>alert(1)</script><style>p{}</style>")
    assert text == "Yes\nOn Mon, Ada wrote:\n> Tuesday?\n> > older"
    assert html_to_text("<!--" * 100 + "<b>x") is not None


def _msg(**headers: str) -> EmailMessage:
    em = EmailMessage()
    for k, v in headers.items():
        em[k.replace("_", "-")] = v
    em.set_content("x")
    return em


def test_auto_reply_detection() -> None:
    assert auto_reply_reason(_msg(Auto_Submitted="auto-replied")) == "Auto-Submitted: auto-replied"
    assert auto_reply_reason(_msg(Auto_Submitted="no")) is None
    assert auto_reply_reason(_msg(X_Autoreply="yes")) == "X-Autoreply header"
    assert auto_reply_reason(_msg(Precedence="auto_reply")) == "Precedence: auto_reply"
    assert auto_reply_reason(_msg(Subject="Automatic reply: Interview")) is not None
    assert auto_reply_reason(_msg(Subject="Abwesenheitsnotiz: Interview")) is not None
    assert auto_reply_reason(_msg(Subject="Re: Interview")) is None


def test_charsets_never_fail() -> None:
    data = "Grüße".encode("latin-1")
    assert decode_bytes(data, "x-unknown") == "Grüße"  # undeclared Latin-1, not junk
    assert decode_bytes("Grüße".encode(), "utf-8") == "Grüße"
    for cs in ("rot13", "base64", "zlib", "utf-7", "\x00", "a" * 100, None):
        decode_bytes(b"+\xff\xfe-abc", cs)


def test_safe_text_removes_what_databases_refuse() -> None:
    assert safe_text("a\x00b\x07c\td\ne\udcff", 100) == "abc\td\ne?"
    assert safe_text(None, 5) == "" and safe_text("x" * 10, 5) == "xxxxx"


def test_parse_mail_reads_headers_body_and_attachments() -> None:
    em = EmailMessage()
    em["From"] = "=?utf-8?q?N=C3=AFna?= <nina@example.org>"
    em["Subject"] = "=?utf-8?b?UmU6IEludGVydmlldyDinJM=?="
    em["Message-ID"] = "<m1@example.org>"
    em["In-Reply-To"] = "<orig@mail.test>"
    em.set_content("Hello\x00 there")
    em.add_attachment(b"%PDF", maintype="application", subtype="pdf",
                      filename="../../etc/pass\\wd.pdf")
    em.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="logo.png",
                      disposition="inline")
    parsed = parse_mail(em.as_bytes())
    assert parsed.readable
    assert (parsed.from_name, parsed.from_address) == ("Nïna", "nina@example.org")
    assert parsed.subject == "Re: Interview ✓"
    assert parsed.message_id == "m1@example.org" and parsed.in_reply_to == "<orig@mail.test>"
    assert parsed.text.strip() == "Hello there"
    names = [a.filename for a in parsed.attachments]
    assert names[0] == "_.._etc_pass_wd.pdf" and "/" not in names[0]
    assert "logo.png" in names  # an inline file with a name is still the candidate's file


def test_parse_mail_is_total() -> None:
    deep = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(1000))
    parsed = parse_mail(deep)
    assert not parsed.readable and parsed.problem and "MIME" in parsed.problem
    for raw in (b"", b"\x00" * 100, b"Content-Type: text/plain; charset=rot13\r\n\r\n\xff",
                b"From: \xff\xfe\r\nSubject: \x00\r\n\r\n"):
        result = parse_mail(raw)
        assert "\x00" not in result.subject + result.text + result.from_name
    assert message_from_bytes(b"", policy=compat32) is not None
