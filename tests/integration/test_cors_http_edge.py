"""CORS for /graphql and document downloads, and the GraphQL-over-HTTP edge: bodies that are
not a JSON object or not UTF-8 answer 400 with a GraphQL error, never 500. A wrong token is
told it is invalid, not that authentication is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

SPA = "http://spa.example:5173"
OTHER = "https://evil.example"
PREFLIGHT_HEADERS = {"Authorization", "Content-Type", "GraphQL-Require-Preflight",
                     "Apollo-Require-Preflight", "X-Request-ID"}


@pytest.fixture
async def client(db: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    from api.app import create_app
    from core.settings import reset_settings

    monkeypatch.setenv("RECRUITMAIL_ALLOWED_ORIGINS", f"{SPA}, https://admin.example")
    reset_settings()
    app = create_app(manage_db=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api.test") as c:
        yield c


def _cors(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", ["/graphql", "/documents/RG9jdW1lbnQ6eA"])
async def test_preflight_from_an_allowed_origin(client: httpx.AsyncClient, path: str) -> None:
    r = await client.options(path, headers={
        "Origin": SPA, "Access-Control-Request-Method": "POST" if path == "/graphql" else "GET",
        "Access-Control-Request-Headers": "authorization, content-type, graphql-require-preflight"})
    assert 200 <= r.status_code < 300
    assert r.headers["access-control-allow-origin"] == SPA
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {h.lower() for h in PREFLIGHT_HEADERS} <= allowed
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert int(r.headers["access-control-max-age"]) > 0
    assert "origin" in r.headers.get("vary", "").lower()
    assert "access-control-allow-credentials" not in r.headers


async def test_preflight_and_request_from_another_origin_get_no_cors_headers(
        client: httpx.AsyncClient, tenant: Any) -> None:
    r = await client.options("/graphql", headers={
        "Origin": OTHER, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 403
    assert _cors(r.headers) == {}
    r = await client.post("/graphql", json={"query": "{ viewer { name } }"},
                          headers={"Origin": OTHER, **tenant.auth})
    assert _cors(r.headers) == {}
    # A look-alike of an allowed origin is another origin.
    for near in ("http://spa.example:5174", "https://spa.example:5173", "http://spa.example",
                 "null"):
        r = await client.options("/graphql", headers={
            "Origin": near, "Access-Control-Request-Method": "POST"})
        assert _cors(r.headers) == {}, near


async def test_query_from_an_allowed_origin_reads_the_answer(client: httpx.AsyncClient,
                                                              tenant: Any) -> None:
    r = await client.post("/graphql", json={"query": "{ viewer { name } }"},
                          headers={"Origin": "HTTPS://Admin.Example:443", **tenant.auth})
    assert r.status_code == 200
    assert r.json()["data"]["viewer"]["name"] == "Ada Admin"
    assert r.headers["access-control-allow-origin"] == "HTTPS://Admin.Example:443"
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    # No Origin (curl, servers): no CORS headers, same answer.
    r = await client.post("/graphql", json={"query": "{ viewer { name } }"}, headers=tenant.auth)
    assert r.status_code == 200 and _cors(r.headers) == {}


async def test_star_allows_every_origin_only_when_set(db: Any, monkeypatch: pytest.MonkeyPatch,
                                                      tenant: Any) -> None:
    from api.app import create_app
    from core.settings import reset_settings

    for value, expect in (("*", "*"), ("", None)):
        monkeypatch.setenv("RECRUITMAIL_ALLOWED_ORIGINS", value)
        reset_settings()
        app = create_app(manage_db=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://api.test") as c:
            r = await c.options("/graphql", headers={
                "Origin": OTHER, "Access-Control-Request-Method": "POST"})
            assert r.headers.get("access-control-allow-origin") == expect
            r = await c.post("/graphql", json={"query": "{ viewer { name } }"},
                             headers={"Origin": OTHER, **tenant.auth})
            assert r.status_code == 200
            assert r.headers.get("access-control-allow-origin") == expect


def test_a_wrong_origin_setting_stops_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import SettingsError, load_settings

    monkeypatch.setenv("RECRUITMAIL_ALLOWED_ORIGINS", "https://ok.example, spa.example/app")
    with pytest.raises(SettingsError, match="RECRUITMAIL_ALLOWED_ORIGINS"):
        load_settings()


@pytest.mark.parametrize("body", [b"null", b'"x"', b"5", b"true", b"[]", b"[1, 2]",
                                  b'[{"query": "{ __typename }"}]', b"\xff\xfe\xfa",
                                  b'{"query": "\xc3\x28"}', b"{", b"",
                                  b'{"query": 5}', b'{"query": "{ __typename }", "variables": 3}'])
@pytest.mark.parametrize("accept", ["application/json",
                                    "application/graphql-response+json, application/json"])
async def test_bodies_that_are_not_a_json_object_answer_400(
        client: httpx.AsyncClient, tenant: Any, body: bytes, accept: str) -> None:
    r = await client.post("/graphql", content=body, headers={
        "Content-Type": "application/json", "Accept": accept, **tenant.auth})
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert errors and errors[0]["message"]
    assert "data" not in r.json()


async def test_multipart_operations_that_are_not_an_object_answer_400(
        client: httpx.AsyncClient, tenant: Any) -> None:
    for operations in (b"null", b"[]", b"5", b"\xff\xfe{"):
        r = await client.post("/graphql", headers={**tenant.auth, "GraphQL-Require-Preflight": "1"},
                              files={"operations": (None, operations), "map": (None, b"{}")})
        assert r.status_code == 400, (operations, r.text)
        assert r.json()["errors"]


async def test_a_wrong_token_is_told_it_is_invalid(client: httpx.AsyncClient, tenant: Any) -> None:
    r = await client.post("/graphql", json={"query": "{ viewer { name } }"},
                          headers={"Authorization": "Bearer rm_not_a_token"})
    [error] = r.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "invalid or expired" in error["message"]
    r = await client.post("/graphql", json={"query": "{ viewer { name } }"})
    [error] = r.json()["errors"]
    assert "invalid" not in error["message"] and "Authorization" in error["message"]
    r = await client.get("/documents/RG9jdW1lbnQ6eA", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid or expired" in r.json()["message"]
