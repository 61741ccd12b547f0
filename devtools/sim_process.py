"""Runs `sous sim` as a separate process (tests, benchmarks, `sous dev`) and talks to its admin API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from devtools.procs import stop_process
from devtools.services import free_port


def _sous_command() -> list[str]:
    script = Path(sys.executable).with_name("sous")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


class SimProcess:
    """`with SimProcess(profile="instant") as sim: ... sim.base_url ...` (127.0.0.1 only)."""

    def __init__(
        self,
        profile: str = "instant",
        port: int | None = None,
        args: tuple[str, ...] = (),
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.profile = profile
        self.port = port or free_port()
        self.args = args
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What LOCAL_LLM_BASE_URL should be."""
        return f"{self.url}/v1"

    def start(self, timeout: float = 30.0) -> SimProcess:
        cmd = [*_sous_command(), "sim", "--port", str(self.port), "--profile", self.profile, *self.args]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(self.env or {})}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sous sim exited with {self.proc.returncode} (log: {self.log_path})")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sous sim did not become healthy within {timeout}s")

    def stop(self) -> None:
        stop_process(self.proc)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/admin/stats", timeout=5).json()
        return data

    def chat_requests(self) -> int:
        return int(self.stats()["chat_requests"])

    def set_faults(
        self,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        malformed_rate: float = 0.0,
        rejected_rate: float = 0.0,
        duration_s: float | None = None,
    ) -> dict[str, Any]:
        body = {"error_rate": error_rate, "timeout_rate": timeout_rate, "malformed_rate": malformed_rate,
                "rejected_rate": rejected_rate,
                "duration_s": duration_s}  # fmt: skip
        resp = httpx.post(f"{self.url}/admin/faults", json=body, timeout=5)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def set_healthy(self, healthy: bool) -> None:
        httpx.post(f"{self.url}/admin/health", json={"healthy": healthy}, timeout=5).raise_for_status()

    def __enter__(self) -> SimProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.stop()
