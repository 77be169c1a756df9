"""GraphQL over HTTP: media types and status codes (the graphql-http audit's rules), and the
third-party audit itself against a live server when node is available."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from tests.support.paths import RUN

GR = "application/graphql-response+json"


async def test_media_type_and_status_codes(api, tenant):
    h = {"Authorization": f"Bearer {tenant.token}", "Accept": GR}
    ok = await api.client.post("/graphql", json={"query": "{ viewer { name } }"}, headers=h)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith(GR)
    assert ok.json()["data"]["viewer"]["name"] == "Ada Admin"
    for query, variables in (("{ viewer { name ", None), ("{ nope }", None),
                             ("query($n: Int!) { __typename }", {"n": "x"})):
        r = await api.client.post("/graphql", json={"query": query, "variables": variables},
                                  headers=h)
        assert r.status_code == 400, (query, r.status_code, r.text)
        assert r.headers["content-type"].startswith(GR)
        assert "data" not in r.json() and r.json()["errors"]
    legacy = await api.client.post("/graphql", json={"query": "{ nope }"},
                                   headers={"Authorization": h["Authorization"],
                                            "Accept": "application/json"})
    assert legacy.headers["content-type"].startswith("application/json")
    # An execution error (no token) is not a request error: 200 with data null.
    anon = await api.client.post("/graphql", json={"query": "{ viewer { name } }"},
                                 headers={"Accept": GR})
    assert anon.status_code == 200
    assert anon.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    mutation_by_get = await api.client.get(
        "/graphql", params={"query": 'mutation { createPosition(input: {title: "x"}) { errors { code } } }'},
        headers=h)
    assert mutation_by_get.status_code in (400, 405)


async def test_third_party_audit(live_server, tenant):
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the graphql-http audit cannot run")
    # The server runs on this test's event loop: the audit must not block it.
    proc = await asyncio.create_subprocess_exec(
        str(RUN), "audit.js", f"{live_server.http_url}/graphql", "--strict",
        env={**os.environ, "AUTH": f"Bearer {tenant.token}"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "warn: 0  error: 0" in text
