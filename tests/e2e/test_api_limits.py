"""Issue 13's per-user limits against the API as deployed (gunicorn at LOG_LEVEL=INFO): event
streams, /standardize items per hour, the quota checked before any fetch, and fetches that
hang without slowing anyone else. Each refusal has its code; refused work costs no quota.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from devtools.services import free_port
from tests.api_support import SERVICE_KEY, auth, png, token
from tests.attack_support import (
    ALLOWED_HOST,
    FETCH_DEADLINE,
    PER_USER_FETCHES,
    STANDARDIZE_PER_HOUR,
    STREAMS_PER_USER,
    ImageHost,
    Stack,
    Stream,
    charged,
    send,
    serve_api,
    set_limits,
    submit_url,
    timings,
)


def test_streams_per_user_are_capped_and_end_at_the_tokens_exp(stack: Stack) -> None:
    user = uuid.uuid4()
    streams = [Stream(stack, token(user)) for _ in range(STREAMS_PER_USER)]
    try:
        assert all(s.ready.is_set() for s in streams)
        r = httpx.get(f"{stack.url}/api/extraction/events", headers=auth(user), timeout=10)
        assert (r.status_code, r.json()["code"]) == (429, "TOO_MANY_STREAMS"), r.text
        assert int(r.headers["Retry-After"]) > 0
        other = Stream(stack, token(uuid.uuid4()))  # another user is not affected
        assert other.ready.is_set()
        other.close()
        streams.pop().close()  # a stream that ends gives its slot back
        deadline = time.monotonic() + 10
        while not (again := Stream(stack, token(user))).ready.is_set():
            assert again.status == 429 and time.monotonic() < deadline
            time.sleep(0.3)
        streams.append(again)
    finally:
        for stream in streams:
            stream.close()
    short = Stream(stack, token(uuid.uuid4(), ttl_seconds=3))
    try:
        assert short.ended.wait(8), short.events  # closed by the server, not by the client
        kinds = [k for k, _ in short.events]
        assert kinds[0] == "ready" and kinds[-1] == "expired"
        assert json.loads(short.events[-1][1])["code"] == "TOKEN_EXPIRED"
    finally:
        short.close()


# ------------------------------------------------------------------------------ /standardize


def test_standardize_items_per_hour_are_capped(stack: Stack, http: httpx.Client) -> None:
    user = uuid.uuid4()
    items = [f"{i + 1} cups flour" for i in range(STANDARDIZE_PER_HOUR)]
    ok = http.post("/api/ingredients/standardize", json={"ingredients": items}, headers=auth(user))
    assert ok.status_code == 200 and len(ok.json()["results"]) == STANDARDIZE_PER_HOUR
    r = http.post("/api/ingredients/standardize", json={"ingredients": ["1 egg"]}, headers=auth(user))
    assert (r.status_code, r.json()["code"]) == (429, "RATE_LIMIT_EXCEEDED"), r.text
    assert 0 < int(r.headers["Retry-After"]) <= 3600 and r.json()["limit"] == "standardize_items_per_hour"
    other = http.post(
        "/api/ingredients/standardize", json={"ingredients": ["1 egg"]}, headers=auth(uuid.uuid4())
    )
    assert other.status_code == 200  # per user
    service = http.post(
        "/api/ingredients/standardize",
        json={"ingredients": items * 2},
        headers={"X-Service-Key": SERVICE_KEY},
    )
    assert service.status_code == 200  # the service key is not limited (docs/api.md)


# ------------------------------------------------------------------------------ quota and fetches


def test_a_user_out_of_quota_makes_the_server_fetch_nothing(stack: Stack, http: httpx.Client) -> None:
    host = ImageHost(
        lambda req: send(req, png(int(req.path.strip("/").split(".")[0])), Content_Type="image/png")
    )
    try:
        out_of_month, out_of_hour, fine = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        set_limits(stack, out_of_month, {"ocr_jobs": 0})
        set_limits(stack, out_of_hour, {"uploads_per_hour": 0})
        for _ in range(5):
            r = submit_url(http, out_of_month, host.url("/6001.png"))
            assert (r.status_code, r.json()["code"]) == (403, "QUOTA_EXCEEDED"), r.text
            r = submit_url(http, out_of_hour, host.url("/6002.png"))
            assert (r.status_code, r.json()["code"]) == (429, "RATE_LIMIT_EXCEEDED"), r.text
            assert int(r.headers["Retry-After"]) > 0
        assert host.connections == 0
        assert charged(stack, out_of_month) == (0, 0) and charged(stack, out_of_hour) == (0, 0)
        r = submit_url(http, fine, host.url("/6003.png"))  # the host is reachable: zero meant something
        assert r.status_code == 200, r.text
        assert host.connections == 1
    finally:
        host.close()


def test_100_hanging_image_urls_do_not_slow_other_requests(stack: Stack) -> None:
    """On ONE API worker, as in the review's probe (with two, a keep-alive client may simply
    talk to the idle one). Before issue 13 the fetches ran in the shared thread pool (40
    threads): 100 hanging fetches filled it and /healthz, the quota read and every other sync
    route queued behind them."""
    with serve_api(stack.env | {"API_WORKERS": "1", "API_PORT": str(free_port())}, stack.log) as url:
        _hang_100(stack, url)


def _hang_100(stack: Stack, api_url: str) -> None:
    mute = socket.create_server((ALLOWED_HOST, 0), backlog=512)  # accepts, never answers
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(mute.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://{ALLOWED_HOST}:{mute.getsockname()[1]}/menu.png"
    hangers = [uuid.uuid4() for _ in range(50)]
    bystander = uuid.uuid4()
    idle = timings(api_url, bystander)

    def hang(user: uuid.UUID) -> httpx.Response:
        return httpx.post(
            f"{api_url}/api/extraction/submit", json={"imageUrl": url}, headers=auth(user), timeout=60
        )

    try:
        with ThreadPoolExecutor(100) as pool:
            pending = [pool.submit(hang, u) for u in hangers for _ in range(PER_USER_FETCHES)]
            deadline = time.monotonic() + FETCH_DEADLINE - 1
            while len(held) < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(held) == 100  # every fetch is in flight, hanging
            t0 = time.monotonic()
            busy = timings(api_url, bystander)
            extra = hang(hangers[-1])  # a third fetch of a user with two in flight (the latest)
            print(f"all in flight, measured in {time.monotonic() - t0:.2f}s")
            results = [f.result() for f in pending]
    finally:
        mute.close()
        for s in held:
            s.close()
    assert (extra.status_code, extra.json()["code"]) == (429, "TOO_MANY_FETCHES"), extra.text
    assert int(extra.headers["Retry-After"]) > 0
    assert {(r.status_code, r.json()["code"]) for r in results} == {(400, "INVALID_INPUT")}
    assert all(f"longer than {FETCH_DEADLINE}s" in r.json()["error"] for r in results)
    assert all(charged(stack, u) == (0, 0) for u in hangers[:5])
    # As fast as idle, within what two busy cores allow: 100 client threads share them.
    print("idle ms", {k: round(v * 1000, 1) for k, v in idle.items()})
    print("busy ms", {k: round(v * 1000, 1) for k, v in busy.items()})
    for name in ("health", "quota"):
        assert busy[name] < max(5 * idle[name], idle[name] + 0.25), (name, idle, busy)
        assert busy[f"{name}_max"] < idle[f"{name}_max"] + 1.0, (name, idle, busy)
