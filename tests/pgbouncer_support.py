"""A real PgBouncer (the Debian package) in transaction mode in front of the test Postgres, on a
free port, as Supabase's pooler on 6543 is: LISTEN does not pass and a session does not last
beyond a transaction. It runs as `postgres` when the tests run as root."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from devtools.procs import stop_process
from devtools.services import DevServiceError, free_port


class PgBouncer:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sous-pgbouncer-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise DevServiceError("pgbouncer not found: install it (apt-get install pgbouncer)")
        (self.dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.upstream_host} port={self.upstream_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir}/userlist.txt\n"
            "pool_mode = transaction\nmax_client_conn = 400\ndefault_pool_size = 20\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.dir}/pgbouncer.log\n"
        )
        as_root = os.geteuid() == 0
        if as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            for p in self.dir.iterdir():
                shutil.chown(p, "postgres", "postgres")
        self.proc = subprocess.Popen(
            [binary, str(self.dir / "pgbouncer.ini")],
            user="postgres" if as_root else None,
            group="postgres" if as_root else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(
                    self.url_for("postgres"), connect_timeout=2, prepare_threshold=None
                ) as c:
                    c.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (self.dir / "pgbouncer.log").read_text()
                        if (self.dir / "pgbouncer.log").exists()
                        else ""
                    )
                    raise DevServiceError(
                        f"pgbouncer did not start on port {self.port}\n{log[-2000:]}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
