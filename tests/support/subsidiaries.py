"""Subsidiaries in the integration tests: their GraphQL mutations, a real SMTP server for
the company and for each of two subsidiaries (the `servers` fixture, which takes
`local_servers` from tests/support/company_smtp.py; both modules are plugins of
tests/conftest.py), and the rows they start from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.ids import parse_id, to_global_id
from core.models import Application, Candidate
from tests.support.sink import Sink, start_sink

CREATE = """
mutation($input: SubsidiaryInput!) {
  createSubsidiary(input: $input) {
    subsidiary { id name emailSettings { senderNameMode recruitingAddress smtpConfigured
                                         smtpHost smtpPort smtpUsername smtpSecurity } }
    errors { code field message } } }"""
UPDATE = """
mutation($id: ID!, $input: SubsidiaryInput!) {
  updateSubsidiary(id: $id, input: $input) {
    subsidiary { id name emailSettings { senderNameMode recruitingAddress smtpConfigured
                                         smtpHost smtpPort smtpUsername smtpSecurity } }
    errors { code field message } } }"""
CREATE_POSITION = """
mutation($input: CreatePositionInput!) {
  createPosition(input: $input) { position { id title subsidiary { id name } }
                                  errors { code field message } } }"""
SEND_BULK = """
mutation($input: SendBulkEmailInput!) {
  sendBulkEmail(input: $input) { bulkOperation { id total } errors { code field message } } }"""
SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { message { id fromName fromAddress status }
                               errors { code field message } } }"""


@dataclass
class Server:
    sink: Sink
    logins: list[tuple[str, str]]


async def _server(user: str | None = None, password: str | None = None) -> Server:
    """A real SMTP server; with a user, it takes only that login (plain AUTH, no TLS)."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[str, str]] = []
    if user is None:
        return Server(await start_sink(), logins)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()) == (user, password)
        if ok:
            logins.append((user, password or ""))
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 on failure

    return Server(await start_sink(authenticator=authenticator, auth_required=True,
                                   auth_require_tls=False), logins)


@pytest.fixture
async def servers(db: Any, local_servers: None) -> AsyncIterator[dict[str, Server]]:
    made = {"company": await _server(),
            "nl": await _server("nl-user", "Nl pass 7§"),
            "de": await _server("de-user", "De pass 8%")}
    try:
        yield made
    finally:
        for s in made.values():
            await s.sink.close()


def _settings(server: Server, address: str | None, user: str | None = None,
              password: str | None = None, **more: Any) -> dict[str, Any]:
    out = {"recruitingAddress": address, "smtpHost": "127.0.0.1",
           "smtpPort": server.sink.port, "smtpSecurity": "NONE", **more}
    if user:
        out |= {"smtpUsername": user, "smtpPassword": password}
    return out


async def _create(api: Any, tenant: Any, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = (await api.gql(tenant, CREATE, input=fields))["createSubsidiary"]
    return out


async def _position(api: Any, tenant: Any, title: str, subsidiary_id: str | None) -> str:
    out = (await api.gql(tenant, CREATE_POSITION, input={
        "title": title, "subsidiaryId": subsidiary_id}))["createPosition"]
    assert out["errors"] == [], out
    pid: str = out["position"]["id"]
    return pid


async def _applications(tenant: Any, position_gid: str, prefix: str, n: int) -> list[str]:
    """n candidates (prefix-i@example.org) with an application to the position each."""
    cid = tenant.company.id
    pos_id = parse_id(position_gid, "Position")
    out = []
    for i in range(n):
        cand = await Candidate.create(company_id=cid, first_name=f"{prefix}{i}",
                                      last_name="Test", email=f"{prefix}-{i}@example.org")
        app = await Application.create(company_id=cid, candidate_id=cand.id,
                                       position_id=pos_id)
        out.append(to_global_id("Application", app.id))
    return out


async def _group(api: Any, tenant: Any, servers: dict[str, Server]) -> dict[str, Any]:
    """The company (own server, sender names of employees) and two subsidiaries with their
    own servers: NL under its own name (mode COMPANY), DE under the employee's name."""
    out = (await api.gql(tenant, """mutation($input: CompanyEmailSettingsInput!) {
        updateCompanyEmailSettings(input: $input) { errors { code field } } }""",
                         input=_settings(servers["company"], "jobs@acme.example",
                                         senderNameMode="EMPLOYEE")))
    assert out["updateCompanyEmailSettings"]["errors"] == []
    nl = await _create(api, tenant, name="Acme Nederland B.V.", senderNameMode="COMPANY",
                       **_settings(servers["nl"], "werving@acme.nl", "nl-user", "Nl pass 7§"))
    de = await _create(api, tenant, name="Acme Deutschland GmbH", senderNameMode="EMPLOYEE",
                       **_settings(servers["de"], "karriere@acme.de", "de-user", "De pass 8%"))
    assert nl["errors"] == [] and de["errors"] == [], (nl, de)
    return {"nl": nl["subsidiary"], "de": de["subsidiary"]}
