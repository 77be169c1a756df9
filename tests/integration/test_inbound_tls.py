"""The gateway offers STARTTLS when a certificate is configured (sending MTAs upgrade
opportunistically) and still accepts plain SMTP; a half configuration stops it at start."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from core.models import Candidate, Message
from core.models.enums import MessageDirection
from core.security import signed_address
from core.services import messaging
from core.settings import SettingsError, reset_settings
from tests.support.tls import make_server_tls

REPLY = ("From: Nina <nina@example.org>\r\nTo: {to}\r\nSubject: Re: Hello\r\n"
         "Message-ID: <reply-1@example.org>\r\n\r\nThanks, see you then.\r\n")


async def test_starttls_offered_and_used(tenant, env, monkeypatch):
    from inbound.server import start_server

    ca, _ = make_server_tls(env.tmp / "tls")
    monkeypatch.setenv("RECRUITMAIL_INBOUND_TLS_CERT", str(env.tmp / "tls" / "server.pem"))
    monkeypatch.setenv("RECRUITMAIL_INBOUND_TLS_KEY", str(env.tmp / "tls" / "server.key"))
    reset_settings()
    cand = await Candidate.create(company_id=tenant.company.id, first_name="Nina",
                                  last_name="V", email="nina@example.org")
    sent = await messaging.send_message(employee=tenant.employee, candidate_id=cand.id,
                                        subject="Hello", body="Text")
    reply_to = signed_address("r", sent.id)
    gateway = await start_server("127.0.0.1", 0)
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gateway.port, start_tls=False,
                                 local_hostname="mta.example.org",
                                 tls_context=ssl.create_default_context(cafile=str(ca)))
        await client.connect()
        await client.ehlo()
        assert client.supports_extension("starttls")
        await client.starttls(server_hostname="localhost")
        refused, _ = await client.sendmail("nina@example.org", [reply_to],
                                           REPLY.format(to=reply_to).encode())
        assert refused == {}
        await client.quit()
        # Plain SMTP still works: STARTTLS is offered, not required.
        plain = await aiosmtplib.send(REPLY.format(to=reply_to).replace("reply-1", "reply-2"),
                                      sender="nina@example.org", recipients=[reply_to],
                                      hostname="127.0.0.1", port=gateway.port, start_tls=False,
                                      local_hostname="mta.example.org")
        assert plain[1].startswith("2")
    finally:
        gateway.close()
        await gateway.wait_closed(grace=5)
    inbound = await Message.filter(direction=MessageDirection.INBOUND, candidate_id=cand.id)
    assert len(inbound) == 2


async def test_half_a_tls_configuration_is_refused(db, env, monkeypatch):
    from inbound.server import start_server

    monkeypatch.setenv("RECRUITMAIL_INBOUND_TLS_CERT", str(env.tmp / "missing.pem"))
    reset_settings()
    with pytest.raises(SettingsError, match="RECRUITMAIL_INBOUND_TLS"):
        await start_server("127.0.0.1", 0)
