"""The appliance's processes on this host, under the same supervisord config as the worker image.

`LocalStack(state_dir)` is what `make dev` runs (state in .dev/) and what the soak, chaos and
supervisord tests run (state in a temporary directory):
- services: DATABASE_URL / REDIS_URL when they answer, otherwise throwaway PostgreSQL and Redis
  under the state directory;
- model: LOCAL_LLM_BASE_URL when set, otherwise the simulator (its figures are simulated);
- supervisord with images/supervisord.conf (dispatcher + WORKER_COUNT workers) and
  scripts/dev-programs.conf (API, simulator).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import psycopg
import redis

from core import migrate
from core.db import libpq_url
from devtools.services import PostgresServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
SUPERVISORD_CONF = ROOT / "images" / "supervisord.conf"
DEV_PROGRAMS = ROOT / "scripts" / "dev-programs.conf"
BIN = Path(sys.executable).parent


def reachable_db(url: str | None) -> bool:
    if not url:
        return False
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def reachable_redis(url: str | None) -> bool:
    if not url:
        return False
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except redis.RedisError:
        return False


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class LocalStack:
    def __init__(self, state: Path, *, use_env_services: bool = True) -> None:
        self.state = state.resolve()
        self.state.mkdir(parents=True, exist_ok=True)
        # PostgreSQL runs as `postgres` when we are root: it must be able to pass through.
        self.state.chmod(0o711)
        self.use_env_services = use_env_services
        self.postgres = PostgresServer(port=self._port("postgres"), base_dir=str(self.state / "postgres"))
        self.redis = RedisServer(port=self._port("redis"), base_dir=str(self.state / "redis"))

    def _port(self, name: str, preferred: int | None = None) -> int:
        """A port remembered in the state directory, so URLs stay the same between runs."""
        path = self.state / f"{name}.port"
        if path.exists():
            return int(path.read_text())
        port = preferred if preferred and _is_free(preferred) else free_port()
        path.write_text(str(port))
        return port

    def _secret(self, name: str) -> str:
        """Local secrets are generated once per state directory, never defaulted."""
        if os.environ.get(name):
            return os.environ[name]
        path = self.state / f"{name.lower()}.secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def start_services(self) -> dict[str, str]:
        postgres, redis_server = self.postgres, self.redis
        env = {
            "DATABASE_URL": self._service(
                "DATABASE_URL",
                reachable_db,
                f"PostgreSQL on port {postgres.port}",
                postgres.url,
                postgres.start,
            ),
            "REDIS_URL": self._service(
                "REDIS_URL",
                reachable_redis,
                f"Redis on port {redis_server.port}",
                redis_server.url,
                lambda: redis_server.start(detach=True),
            ),
        }
        migrate.upgrade(env["DATABASE_URL"])
        return env

    def _service(
        self,
        variable: str,
        reachable: Callable[[str], bool],
        what: str,
        url: str,
        start: Callable[[], object],
    ) -> str:
        """The environment's `variable` when it answers (and may be used), else our throwaway
        server's URL, started unless it already runs."""
        given = os.environ.get(variable) if self.use_env_services else None
        if given and reachable(given):
            return given
        if not reachable(url):
            print(f"starting a throwaway {what}")
            start()
        return url

    def stack_env(
        self, services: Mapping[str, str], overrides: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The environment of every supervisord program. `overrides` win over everything."""
        given = {**os.environ, **(overrides or {})}
        env = dict(services)
        env.update(
            API_HOST="127.0.0.1",
            API_PORT=given.get("API_PORT") or str(self._port("api", 8000)),
            SERVICE_API_KEY=self._secret("SERVICE_API_KEY"),
            SUPABASE_JWT_SECRET=self._secret("SUPABASE_JWT_SECRET"),
            # The simulator's latency is sleep, not CPU: 4 workers keep a small box responsive.
            WORKER_COUNT=given.get("WORKER_COUNT", "4"),
            QUEUE_SOURCE=given.get("QUEUE_SOURCE", "any"),
            QUEUE_REVIEW_MODE=given.get("QUEUE_REVIEW_MODE", "any"),
            MENU_ALLOW_PRIVATE_HOSTS=given.get("MENU_ALLOW_PRIVATE_HOSTS", "true"),
            SOUS_SUPERVISOR_DIR=str(self.state),
            SOUS_SUPERVISOR_EXTRA=str(DEV_PROGRAMS),
            SOUS_SIM_PROFILE=given.get("SOUS_SIM_PROFILE", "vllm-bf16"),
            # One metrics directory for the API's gunicorn workers and the RQ workers of this
            # host, so /metrics adds up model calls made in the workers (docs/observability.md).
            PROMETHEUS_MULTIPROC_DIR=str(self.state / "metrics"),
            PATH=f"{BIN}:{os.environ.get('PATH', '')}",
        )
        if given.get("LOCAL_LLM_BASE_URL"):
            env.update(
                LOCAL_LLM_ENABLED="true",
                LOCAL_LLM_BASE_URL=given["LOCAL_LLM_BASE_URL"],
                SOUS_SIM_AUTOSTART="false",
                SOUS_SIM_PORT="0",
            )
        else:
            sim_port = self._port("sim")
            env.update(
                LOCAL_LLM_ENABLED="true",
                LOCAL_LLM_BASE_URL=f"http://127.0.0.1:{sim_port}/v1",
                SOUS_SIM_AUTOSTART="true",
                SOUS_SIM_PORT=str(sim_port),
            )
        env.update(overrides or {})
        return env

    @property
    def pidfile(self) -> Path:
        return self.state / "sous-supervisord.pid"

    def supervisor_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return None

    def supervisorctl(self, env: Mapping[str, str], *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(SUPERVISORD_CONF), *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout

    def start(self, env: Mapping[str, str], wait_seconds: float = 90) -> None:
        metrics = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(metrics, ignore_errors=True)  # prometheus-client wants it fresh per start
        metrics.mkdir(parents=True)
        (self.state / "env").write_text("".join(f"export {k}={v}\n" for k, v in env.items() if k != "PATH"))
        if self.supervisor_pid():
            print("supervisord already running: restarting its programs")
            self.supervisorctl(env, "restart", "all")
        else:
            log = (self.state / "stack.log").open("ab")
            subprocess.Popen(
                [str(BIN / "supervisord"), "-c", str(SUPERVISORD_CONF)],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        url = f"http://127.0.0.1:{env['API_PORT']}/healthz"
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(
            f"the API did not answer at {url} within {wait_seconds:.0f} s: see {self.state}/stack.log"
        )

    def stop(self, timeout: float = 200) -> None:
        """SIGTERM to supervisord: it stops each program with its stopsignal and stopwaitsecs."""
        pid = self.supervisor_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.supervisor_pid():
                time.sleep(0.3)

    def stop_services(self) -> None:
        if (self.state / "postgres" / "data").exists():
            self.postgres.stop()
        self.redis.stop()
