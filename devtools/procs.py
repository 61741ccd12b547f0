"""`sous` processes for benchmarks and tests: start one with its output in a log file, read its
JSON log events, signal, stop or kill it; wait for a condition or an HTTP endpoint; read a
Prometheus counter. `make bench` and the end-to-end tests start their processes through here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; nothing when it has already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def read_events(log_path: Path, event: str | None = None) -> list[dict[str, Any]]:
    """The JSON log records of a process's log file (all, or those of one `event`)."""
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and (event is None or rec.get("event") == event):
            out.append(rec)
    return out


def box_env(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment for a box's programs, minus any queue, model or rollout
    setting of the caller's shell (a stray ROLLOUT_STAGE would change what is measured), plus
    the database, every row claimable, the rules after the local model, and `settings`."""
    drop = ("QUEUE_", "LOCAL_LLM_", "DRY_RUN", "ROLLOUT_STAGE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        DATABASE_URL=database_url,
        LLM_PROVIDERS="local,rules",
        QUEUE_SOURCE="any",
        QUEUE_REVIEW_MODE="any",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


class SousProcess:
    """`python -m cli.main ARGS` with stdout and stderr in `log_dir/NAME.log` (JSON lines)."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, *, boost: bool = False
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        # A boosted process (the simulator) stands in for a GPU server that does not share the
        # CPU with the workers: on a busy 2-core box it must not look like a slow model.
        nice = boost and os.geteuid() == 0
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # signals from a test's terminal do not reach it
            preexec_fn=(lambda: os.nice(-10)) if nice else None,  # noqa: PLW1509 - only a nice()
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        return read_events(self.log_path, event)

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        stop_process(self.popen, timeout)
        self._log.close()

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
        self.popen.wait(timeout=10)
        self._log.close()

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def wait_until(
    predicate: Callable[[], bool], timeout: float, diagnostics: Callable[[], str] | None = None
) -> None:
    """Polls until `predicate()`; AssertionError with the diagnostics after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s\n{diagnostics() if diagnostics else ''}")
        time.sleep(0.1)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own local servers
            return bool(resp.status == 200)
    except OSError:
        return False


def wait_http(url: str, timeout: float = 60, diagnostics: Callable[[], str] | None = None) -> None:
    wait_until(lambda: http_ok(url), timeout, diagnostics)


def metric_total(text: str, name: str) -> float:
    """A Prometheus metric in exposition `text`, summed over its labels (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape_metric(base: str, name: str) -> float:
    """`metric_total` of `base/metrics`."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=60) as resp:  # noqa: S310 - local
        return metric_total(resp.read().decode(), name)
