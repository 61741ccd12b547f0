"""The attack list of issue 13's outside review, replayed against the API as deployed: `sous api`
(gunicorn, 2 uvicorn workers) at LOG_LEVEL=INFO, real Postgres and Redis. Every attack is
refused with its code, and nothing is charged to the attacker's quota (read from the database).

Image hosts are local servers. The API's SSRF guard must refuse loopback while these servers
live on loopback: MENU_FETCH_ALLOWED_NETWORKS opens exactly 127.0.0.3/32 (the stand-in for a
public image host, as in test_api_e2e.py); the targets the attacks aim at (127.0.0.1, ::1 and
their other spellings) stay refused, and count every connection they get.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import json
import socket
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import psycopg
import pytest
import redis
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.auth import mint_token
from core.db import create_engine, libpq_url
from tests.api_support import ROOT, SERVICE_KEY, api_env, auth, png, png_bomb, stop, token, wait_http
from worker.devservices import free_port

ALLOWED_HOST = "127.0.0.3"  # the only non-public address the API may fetch from
FETCH_DEADLINE = 8
PER_USER_FETCHES = 2
STREAMS_PER_USER = 2
STANDARDIZE_PER_HOUR = 20


@dataclass
class Stack:
    url: str
    engine: sa.Engine
    log: Path
    env: dict[str, str]

    def events(self, name: str) -> list[dict[str, object]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                out.append(record)
        return out


@contextlib.contextmanager
def serve_api(env: dict[str, str], log: Path) -> Iterator[str]:
    """`sous api` (gunicorn) with this environment, its output in `log`; yields its URL."""
    with log.open("ab") as out:
        api = subprocess.Popen(
            [str(ROOT / ".venv/bin/sous"), "api"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{env['API_PORT']}"
        wait_http(f"{url}/healthz", proc=api)
        yield url
    finally:
        stop(api)


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, template_db: str, redis_server_url: str, tmp_path_factory) -> Iterator[Stack]:
    name = f"sous_api_attacks_{uuid.uuid4().hex[:8]}"
    database_url = f"{libpq_url(pg_admin_url).rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    redis_url = redis_server_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = api_env(
        database_url,
        redis_url,
        API_PORT=str(port),
        API_WORKERS="2",
        API_SSE_PING_SECONDS="1",
        MENU_FETCH_ALLOWED_NETWORKS=f"{ALLOWED_HOST}/32",
        MENU_FETCH_DEADLINE_SECONDS=str(FETCH_DEADLINE),
        MENU_FETCH_PER_USER=str(PER_USER_FETCHES),
        MENU_FETCH_PER_PROCESS="128",  # the 100 hanging fetches of one worker fit
        API_SSE_STREAMS_PER_USER=str(STREAMS_PER_USER),
        API_STANDARDIZE_ITEMS_PER_HOUR=str(STANDARDIZE_PER_HOUR),
    )
    assert env["LOG_LEVEL"] == "INFO"  # the appliance default: the 500 of issue 13 lived here
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path_factory.mktemp("api-attacks") / "api.log"
    engine = create_engine(database_url, pool_size=2)
    try:
        with serve_api(env, log) as url:
            yield Stack(url, engine, log, env)
    finally:
        engine.dispose()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def charged(stack: Stack, user: uuid.UUID) -> tuple[int, int]:
    """(jobs, accepted uploads) of this user: what the monthly quota and the hourly limit count."""
    with stack.engine.begin() as conn:
        jobs = conn.execute(
            sa.text("SELECT count(*) FROM menu_extraction_jobs WHERE user_id = :u"), {"u": str(user)}
        ).scalar()
        uploads = conn.execute(
            sa.text("SELECT count(*) FROM extraction_uploads WHERE user_id = :u"), {"u": str(user)}
        ).scalar()
    return int(jobs or 0), int(uploads or 0)


def set_limits(stack: Stack, user: uuid.UUID, limits: dict[str, int]) -> None:
    with stack.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO profiles (user_id, plan, plan_limits) VALUES (:u, 'free', CAST(:l AS jsonb))"
            ),
            {"u": str(user), "l": json.dumps(limits)},
        )


class ImageHost(ThreadingHTTPServer):
    """A local HTTP server that counts the connections it accepts and answers with `serve`."""

    daemon_threads = True

    def __init__(self, serve: Callable[[BaseHTTPRequestHandler], None], host: str = ALLOWED_HOST) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.connections = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                serve(self)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__((host, 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self) -> tuple[socket.socket, object]:
        self.connections += 1
        return super().get_request()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the API hung up on an oversized body: expected

    def url(self, path: str = "/menu.png") -> str:
        host = f"[{self.server_address[0]}]" if ":" in str(self.server_address[0]) else self.server_address[0]
        return f"http://{host}:{self.server_address[1]}{path}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def send(req: BaseHTTPRequestHandler, body: bytes, **headers: str) -> None:
    req.send_response(200)
    req.send_header("Content-Length", str(len(body)))
    for key, value in headers.items():
        req.send_header(key.replace("_", "-"), value)
    req.end_headers()
    req.wfile.write(body)


def submit_url(
    client: httpx.Client, user: uuid.UUID, url: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post("/api/extraction/submit", json={"imageUrl": url}, headers=headers or auth(user))


# ------------------------------------------------------------------------------ the main path


def test_an_upload_answers_200_with_a_job_id_at_info(stack: Stack, http: httpx.Client) -> None:
    user = uuid.uuid4()
    r = http.post(
        "/api/extraction/submit", files={"file": ("m.png", png(5001), "image/png")}, headers=auth(user)
    )
    assert r.status_code == 200, r.text
    job_id = r.json()["jobId"]
    assert charged(stack, user) == (1, 1)
    logged = [e for e in stack.events("menu_submitted") if e.get("job_id") == job_id]
    assert logged and logged[0]["new_job"] is True and logged[0]["level"] == "info"
    assert stack.events("request_crashed") == []


# ------------------------------------------------------------------------------ JWT forgeries


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_tokens(user: uuid.UUID) -> dict[str, str]:
    claims = {
        "sub": str(user),
        "aud": "authenticated",
        "role": "authenticated",
        "exp": int(time.time()) + 600,
    }

    def header_and_claims(alg: str) -> str:
        header = json.dumps({"alg": alg, "typ": "JWT"}).encode()
        return f"{_b64(header)}.{_b64(json.dumps(claims).encode())}"

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # RS/HS confusion: an HS256 token whose HMAC key is the RSA public key (PyJWT refuses to
    # sign like that, so it is built by hand, as an attacker would).
    confused = header_and_claims("HS256")
    confused_sig = hmac.new(public_pem, confused.encode(), hashlib.sha256).digest()
    return {
        "alg none": header_and_claims("none") + ".",
        "wrong key": mint_token("an-attackers-own-secret-0123456789abcdef", user),
        "expired": token(user, now=time.time() - 7200),
        "wrong audience": token(user, extra={"aud": "anon"}),
        "RS256 with the attacker's key": jwt.encode(claims, private, algorithm="RS256"),
        "HS256 keyed with an RSA public key": f"{confused}.{_b64(confused_sig)}",
        "subject not a user id": token(user, extra={"sub": "service_role"}),
        "tampered payload": token(user).rsplit(".", 1)[0][:-2] + "xx." + token(user).rsplit(".", 1)[1],
    }


def test_jwt_forgeries_are_401_and_cost_nothing(stack: Stack, http: httpx.Client) -> None:
    host = ImageHost(lambda req: send(req, png(1)))
    try:
        user = uuid.uuid4()
        for name, forged in forged_tokens(user).items():
            headers = {"Authorization": f"Bearer {forged}"}
            for r in (
                submit_url(http, user, host.url(), headers),
                http.post(
                    "/api/extraction/submit", files={"file": ("m.png", png(1), "image/png")}, headers=headers
                ),
                http.get("/api/extraction/quota", headers=headers),
                http.get("/api/extraction/events", headers=headers),
                http.post(
                    "/api/ingredients/standardize", json={"ingredients": ["1 cup flour"]}, headers=headers
                ),
            ):
                assert r.status_code == 401, (name, r.request.url.path, r.text)
                assert r.json()["code"] == "UNAUTHORIZED", name
        assert host.connections == 0
        assert charged(stack, user) == (0, 0)
    finally:
        host.close()


def test_credentials_are_checked_before_the_body_is_read(stack: Stack) -> None:
    """A request announcing 5 MB and sending none of it: without valid credentials the 401
    comes at once; with them the server waits for the body (it would read it)."""
    port = int(stack.url.rsplit(":", 1)[1])

    def first_bytes(headers: str) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                (
                    "POST /api/extraction/submit HTTP/1.1\r\nHost: sous\r\nContent-Type: image/png\r\n"
                    f"Content-Length: 5000000\r\n{headers}\r\n"
                ).encode()
            )
            s.settimeout(2)
            try:
                return s.recv(200)
            except TimeoutError:
                return b""

    assert first_bytes("").startswith(b"HTTP/1.1 401")
    assert first_bytes("Authorization: Bearer not.a.token\r\n").startswith(b"HTTP/1.1 401")
    assert first_bytes(f"Authorization: Bearer {token(uuid.uuid4())}\r\n") == b""  # reading the body


# ------------------------------------------------------------------------------ SSRF


def test_ssrf_forms_are_refused_without_a_connection(stack: Stack, http: httpx.Client) -> None:
    target = ImageHost(lambda req: send(req, png(2)), host="127.0.0.1")  # what the attacks aim at
    try:
        target_v6: ImageHost | None = ImageHost(lambda req: send(req, png(2)), host="::1")
    except OSError:  # no IPv6 loopback here: the ::1 forms are still refused, nothing listens
        target_v6 = None
    hops: list[str] = []

    def redirect(req: BaseHTTPRequestHandler) -> None:
        hops.append(req.path)
        req.send_response(302)
        req.send_header("Location", parse_qs(urlsplit(req.path).query)["to"][0])
        req.send_header("Content-Length", "0")
        req.end_headers()

    bouncer = ImageHost(redirect)  # on the allowed host: its first hop IS fetched
    p = target.server_address[1]
    p6 = target_v6.server_address[1] if target_v6 else p
    private = [
        f"http://127.0.0.1:{p}/menu.png",
        f"http://localhost:{p}/menu.png",
        f"http://[::1]:{p6}/menu.png",
        f"http://[::ffff:127.0.0.1]:{p}/menu.png",
        f"http://[::ffff:7f00:1]:{p}/menu.png",
        f"http://2130706433:{p}/menu.png",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{p}/menu.png",  # ... as one hex number
        f"http://127.1:{p}/menu.png",
        "http://10.0.0.1/menu.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/menu.png",
        "http://0.0.0.0/",
    ]
    malformed = [f"http://0177.0.0.1:{p}/menu.png", f"http://[::1%25lo]:{p}/menu.png"]  # octal, zone id
    schemes = ["file:///etc/passwd", f"gopher://127.0.0.1:{p}/_GET%20/", "ftp://127.0.0.1/a.png"]
    user = uuid.uuid4()
    set_limits(stack, user, {"ocr_jobs": 1000, "uploads_per_hour": 1000})
    try:
        for url in private:
            r = submit_url(http, user, url)
            assert (r.status_code, r.json()["code"]) == (400, "INVALID_INPUT"), (url, r.text)
            assert r.json()["error"] == "address not allowed", url  # nothing about what it resolved to
        for url in malformed:
            r = submit_url(http, user, url)
            assert (r.status_code, r.json()["code"]) == (400, "INVALID_INPUT"), (url, r.text)
        for url in private[:8]:  # every loopback form, reached by a redirect from a fetched host
            r = submit_url(http, user, bouncer.url(f"/r?to={url}"))
            assert (r.status_code, r.json()["error"]) == (400, "address not allowed"), (url, r.text)
        for url in schemes:
            r = submit_url(http, user, url)
            assert (r.status_code, r.json()["code"]) == (400, "INVALID_INPUT"), (url, r.text)
            assert "http or https" in r.json()["error"]
        r = submit_url(http, user, bouncer.url("/r?to=file:///etc/passwd"))
        assert r.status_code == 400 and "http or https" in r.json()["error"]
        assert len(hops) == 9  # the allowed first hops were fetched ...
        assert target.connections == 0  # ... and not one refused target was connected to
        assert target_v6 is None or target_v6.connections == 0
        assert charged(stack, user) == (0, 0)
        # The detail is for the operator: in the API's log, not in the answer.
        reasons = {str(e.get("reason")) for e in stack.events("fetch_refused")}
        assert any("is loopback" in r for r in reasons) and any("169.254.169.254" in r for r in reasons)
    finally:
        for server in (target, target_v6, bouncer):
            if server is not None:
                server.close()


# ------------------------------------------------------------------------------ size and bombs


def test_size_and_decompression_bombs_are_refused_and_cost_nothing(stack: Stack, http: httpx.Client) -> None:
    gzip_bomb = gzip.compress(b"\x89PNG\r\n\x1a\n" + b"\0" * (64 * 1024 * 1024), compresslevel=9)
    served = {
        "/declared-huge.png": lambda req: (
            req.send_response(200),
            req.send_header("Content-Length", str(2**31)),
            req.end_headers(),
        ),
        "/gzip-bomb.png": lambda req: send(req, gzip_bomb, Content_Encoding="gzip", Content_Type="image/png"),
        "/pixel-bomb.png": lambda req: send(req, png_bomb(), Content_Type="image/png"),
    }
    host = ImageHost(lambda req: served[req.path](req))
    user = uuid.uuid4()
    try:
        refused = [
            http.post(
                "/api/extraction/submit",
                files={"file": ("b.png", png_bomb(), "image/png")},
                headers=auth(user),
            ),
            http.post(
                "/api/extraction/submit",
                files={"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024), "image/png")},
                headers=auth(user),
            ),
            *(submit_url(http, user, host.url(path)) for path in served),
        ]
        for r in refused:
            assert (r.status_code, r.json()["code"]) == (413, "IMAGE_TOO_LARGE"), r.text
        assert len(gzip_bomb) < 200_000  # 64 MB once inflated: the cap counts inflated bytes
        assert charged(stack, user) == (0, 0)
    finally:
        host.close()


# ------------------------------------------------------------------------------ other users


def test_another_users_jobs_are_not_found(stack: Stack, http: httpx.Client) -> None:
    alice, mallory = uuid.uuid4(), uuid.uuid4()
    job_id = http.post(
        "/api/extraction/submit", files={"file": ("m.png", png(5002), "image/png")}, headers=auth(alice)
    ).json()["jobId"]
    with stack.engine.begin() as conn:  # failed: the state in which its owner may retry it
        conn.execute(
            sa.text("UPDATE menu_extraction_jobs SET status = 'failed' WHERE id = :id"), {"id": job_id}
        )
    for r in (
        http.get(f"/api/extraction/status/{job_id}", headers=auth(mallory)),
        http.post(f"/api/extraction/retry/{job_id}", headers=auth(mallory)),
    ):
        assert (r.status_code, r.json()["code"]) == (404, "JOB_NOT_FOUND"), r.text
    assert charged(stack, mallory) == (0, 0)
    assert charged(stack, alice) == (1, 1)  # mallory's retry made no job on alice's account either


class Stream:
    """An open /api/extraction/events stream read by a thread."""

    def __init__(self, stack: Stack, bearer: str) -> None:
        self.events: list[tuple[str, str]] = []
        self.status = 0
        self.ended = threading.Event()
        self.ready = threading.Event()
        self._client = httpx.Client(base_url=stack.url, timeout=httpx.Timeout(10, read=30))
        self._bearer = bearer
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not (self.ready.is_set() or self.ended.is_set()) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _read(self) -> None:
        kind = ""
        try:
            with self._client.stream(
                "GET", "/api/extraction/events", headers={"Authorization": f"Bearer {self._bearer}"}
            ) as r:
                self.status = r.status_code
                if r.status_code != 200:
                    self.events.append(("refused", r.read().decode()))
                    return
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        self.events.append((kind, line.split(":", 1)[1].strip()))
                        if kind == "ready":
                            self.ready.set()
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test
        finally:
            self.ended.set()

    def close(self) -> None:
        self._client.close()
        self.thread.join(timeout=5)


def test_a_stream_carries_only_its_users_jobs(stack: Stack, http: httpx.Client) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alice_stream, bob_stream = Stream(stack, token(alice)), Stream(stack, token(bob))
    try:
        assert alice_stream.ready.is_set() and bob_stream.ready.is_set()
        job_id = http.post(
            "/api/extraction/submit", files={"file": ("m.png", png(5003), "image/png")}, headers=auth(alice)
        ).json()["jobId"]
        deadline = time.monotonic() + 10
        while not any(k == "job" for k, _ in alice_stream.events):
            assert time.monotonic() < deadline, alice_stream.events
            time.sleep(0.05)
        time.sleep(1)
        assert json.loads(next(d for k, d in alice_stream.events if k == "job"))["id"] == job_id
        assert [k for k, _ in bob_stream.events] == ["ready"]
    finally:
        alice_stream.close()
        bob_stream.close()


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


def _timings(url: str, quota_user: uuid.UUID, n: int = 12) -> dict[str, float]:
    """Median and slowest seconds of /healthz and of a user's quota read, over n calls each.
    The slowest matters: a request queued behind a full thread pool waits once, then the
    ones after it are quick again."""
    health, quota = [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            health.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            assert client.get("/api/extraction/quota", headers=auth(quota_user)).status_code == 200
            quota.append(time.perf_counter() - t0)
    return {
        "health": statistics.median(health),
        "health_max": max(health),
        "quota": statistics.median(quota),
        "quota_max": max(quota),
    }


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
    idle = _timings(api_url, bystander)

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
            busy = _timings(api_url, bystander)
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
