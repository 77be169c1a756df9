"""Structured logs: one JSON object per line, carrying the request id (echoed to the
client) and the message id of what the worker was doing."""

from __future__ import annotations

import json
import logging

from core.logs import JsonFormatter, message_id, request_id


async def test_request_id_is_echoed_and_generated(api, tenant):
    r = await api.client.post("/graphql", json={"query": "{ viewer { name } }"},
                              headers={**tenant.auth, "X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await api.client.post("/graphql", json={"query": "{ viewer { name } }"},
                              headers={**tenant.auth, "X-Request-ID": "bad id\nx"})
    assert len(r.headers["x-request-id"]) == 32


def test_json_lines_carry_ids():
    record = logging.LogRecord("worker.jobs", logging.INFO, __file__, 1, "message %s", ("SENT",),
                               None)
    t1, t2 = request_id.set("req-1"), message_id.set("msg-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(t1)
        message_id.reset(t2)
    data = json.loads(line)
    assert data["msg"] == "message SENT" and data["level"] == "info"
    assert data["request_id"] == "req-1" and data["message_id"] == "msg-1"
