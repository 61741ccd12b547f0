"""Shared by the e2e tests of issue 13's attack list (tests/e2e/test_api_attacks.py and
tests/e2e/test_api_limits.py): `sous api` as deployed (gunicorn) at LOG_LEVEL=INFO on a fresh
database, local image hosts that count connections, and an event-stream reader.

Image hosts are local servers. The API's SSRF guard must refuse loopback while these servers
live on loopback: MENU_FETCH_ALLOWED_NETWORKS opens exactly 127.0.0.3/32 (the stand-in for a
public image host, as in test_api_e2e.py); the targets the attacks aim at (127.0.0.1, ::1 and
their other spellings) stay refused, and count every connection they get.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
import redis
import sqlalchemy as sa

from core.db import create_engine, libpq_url
from devtools.procs import read_events
from devtools.services import free_port
from tests.api_support import ROOT, api_env, auth, stop, wait_http

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
        return read_events(self.log, name)


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


@contextlib.contextmanager
def attack_stack(
    pg_admin_url: str, template_db: str, redis_server_url: str, log_dir: Path
) -> Iterator[Stack]:
    """A fresh database cloned from the template and `sous api` (2 workers) with the limits
    of these tests."""
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
    log = log_dir / "api.log"
    engine = create_engine(database_url, pool_size=2)
    try:
        with serve_api(env, log) as url:
            yield Stack(url, engine, log, env)
    finally:
        engine.dispose()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def timings(url: str, quota_user: uuid.UUID, n: int = 12) -> dict[str, float]:
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
