"""Throwaway Postgres and Redis servers started from the installed binaries.

Used by the tests, the benchmarks and `make dev` when no server is reachable. Each server
lives in its own temporary directory on a free port and never touches the machine's own
databases. initdb and postgres refuse to run as root, so as root they run as `postgres`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


class DevServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    """The newest installed PostgreSQL's binary (Debian keeps them off PATH)."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found:
        return found
    raise DevServiceError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PostgresServer:
    """A private PostgreSQL cluster: initdb into a temp dir, started on a free port."""

    def __init__(self, port: int | None = None, base_dir: str | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="sous-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _chown(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            for p in self.dir.rglob("*"):
                shutil.chown(p, "postgres", "postgres")

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._chown()
        subprocess.run(
            _as_postgres(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> str:
        if not (self.data / "PG_VERSION").exists():
            self.init()
        opts = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories='{self.dir}' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=256MB "
            "-c max_locks_per_transaction=256"
        )
        proc = subprocess.run(
            _as_postgres(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    opts,
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise DevServiceError(f"postgres did not start: {proc.stderr}\n{tail}")
        return self.url

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                capture_output=True,
                check=False,
            )

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    """A private redis-server on a free port, with persistence off unless asked for."""

    def __init__(self, port: int | None = None, base_dir: str | None = None, aof: bool = False) -> None:
        self.port = port or free_port()
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="sous-redis-"))
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None
        self.pidfile = self.dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, detach: bool = False) -> str:
        """Starts redis-server; `detach` leaves it running after this process exits (make dev)."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise DevServiceError("redis-server not found: install it (apt-get install redis-server)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.aof else "no",
                "--dir",
                str(self.dir),
                "--daemonize",
                "no",
                "--logfile",
                str(self.dir / "redis.log"),
                # Read by stop() in a later process: `make dev-down` stops what `make dev` started.
                "--pidfile",
                str(self.pidfile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if (self.proc.poll() not in (None, 0)) or time.monotonic() > deadline:
                    raise DevServiceError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
        client.close()
        return self.url

    def stop(self, sig_kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if sig_kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(timeout=20)
        elif self.pidfile.exists():  # detached (make dev), possibly by an earlier process
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.pidfile.read_text().strip()), signal.SIGKILL if sig_kill else signal.SIGTERM)
        self.pidfile.unlink(missing_ok=True)
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
