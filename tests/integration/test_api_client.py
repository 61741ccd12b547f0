"""api/client.py against a scripted transport: error mapping, wait's backoff, SSE parsing.
(The e2e tests drive the same client against the real gunicorn.)"""

from __future__ import annotations

import json

import httpx
import pytest

from api import client as client_module
from api.client import ApiClientError, SousClient


def test_errors_carry_status_and_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t0k"
        return httpx.Response(429, json={"error": "slow down", "code": "RATE_LIMIT_EXCEEDED", "resetAt": "x"})

    c = SousClient("http://api.test", "t0k", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiClientError) as info:
        c.submit(file=b"\x89PNG\r\n\x1a\n")
    c.close()
    assert info.value.status == 429 and info.value.code == "RATE_LIMIT_EXCEEDED"
    assert info.value.body["resetAt"] == "x"
    with pytest.raises(ValueError, match="exactly one"):
        SousClient("http://api.test", "t").submit()


def test_wait_polls_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    statuses = iter(["queued", "queued", "processing", "processing", "completed"])
    sleeps: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "job": {"id": "j", "status": next(statuses)}})

    with SousClient("http://api.test", "t", transport=httpx.MockTransport(handler)) as c:
        assert c.wait("j", initial_delay=0.5, factor=2, max_delay=3)["status"] == "completed"
    assert sleeps == [0.5, 1.0, 2.0, 3.0]


def test_events_are_parsed() -> None:
    stream = (
        'event: ready\ndata: {"userId": "u"}\n\n'
        ": ping - 2026-01-01\n\n"
        'event: job\nid: j1\ndata: {"id": "j1", "status": "queued"}\n\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})

    with SousClient("http://api.test", "t", transport=httpx.MockTransport(handler)) as c:
        events = list(c.events(include_pings=True))
    assert [e["event"] for e in events] == ["ready", "ping", "job"]
    assert events[2] == {"event": "job", "id": "j1", "data": {"id": "j1", "status": "queued"}}
    assert json.dumps(events[0]["data"]) == '{"userId": "u"}'
