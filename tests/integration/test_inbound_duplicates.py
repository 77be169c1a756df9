"""The same reply delivered twice at the same moment (a sender retrying over a second
connection) is stored once: the database decides, not a look-before-insert."""

from __future__ import annotations

import asyncio

from core.models import Candidate, InboundEmail, InboundReceipt, Message
from core.models.enums import MessageDirection
from core.security import signed_address
from core.services import messaging
from tests.support.inbound import smtp_send

REPLY = ("From: Nina <nina@example.org>\r\nTo: {to}\r\nSubject: Re: Hello\r\n"
         "Message-ID: <same-reply@example.org>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
         "Thanks!\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
         "filename=cv.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n")


async def test_simultaneous_twins_store_one_reply(tenant, gateway, env):
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="V", email="nina@example.org")
    sent = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                        subject="Hello", body="Text")
    to = signed_address("r", sent.id)
    raw = REPLY.format(to=to).encode()
    results = await asyncio.gather(*(smtp_send(gateway.port, raw, to) for _ in range(4)))
    assert [r.code for r in results] == [250] * 4  # every copy is accepted, none bounces
    replies = await Message.filter(candidate_id=cand.id, direction=MessageDirection.INBOUND)
    assert len(replies) == 1
    assert await InboundReceipt.filter(candidate_id=cand.id).count() == 1
    copies = await InboundEmail.filter(candidate_id=cand.id)
    assert len(copies) == 4  # every copy kept, three of them saying they were duplicates
    assert sum("duplicate" in (c.detail or "") for c in copies) == 3
    blobs = [p for p in (env.tmp / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1  # the losers' staged attachments were removed
