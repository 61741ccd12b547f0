"""Chaos for soak runs: each event breaks one part of a running LocalStack for real."""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from core import db
from core.db import create_engine
from devtools.stack import LocalStack

log = logging.getLogger(__name__)


@dataclass
class ChaosEvent:
    at_s: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


class Chaos:
    """Runs each kind of event at random times inside [start_share, end_share] of the run."""

    KINDS = (
        "kill_worker",
        "kill_dispatcher",
        "redis_restart_wiped",
        "postgres_terminate_backends",
        "model_faults",
    )

    def __init__(
        self,
        stack: LocalStack,
        env: Mapping[str, str],
        *,
        duration_s: float,
        rounds: int = 1,
        seed: int | None = None,
        fault_window_s: float = 45,
    ) -> None:
        self.stack = stack
        self.env = env
        self.duration_s = duration_s
        self.fault_window_s = fault_window_s
        rng = random.Random(seed)
        plan = [(rng.uniform(0.1, 0.7) * duration_s, kind) for _ in range(rounds) for kind in self.KINDS]
        self.plan = sorted(plan)
        self.events: list[ChaosEvent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "kill_worker": self.kill_worker,
            "kill_dispatcher": self.kill_dispatcher,
            "redis_restart_wiped": self.redis_restart_wiped,
            "postgres_terminate_backends": self.postgres_terminate_backends,
            "model_faults": self.model_faults,
        }
        for at, kind in self.plan:
            if self._stop.wait(max(0.0, at - (time.monotonic() - self._t0))):
                return
            try:
                detail = actions[kind]()
            except Exception as exc:  # a chaos step that fails is reported, never fatal
                detail = {"error": repr(exc)}
            event = ChaosEvent(round(time.monotonic() - self._t0, 1), kind, detail)
            self.events.append(event)
            log.warning("chaos", extra={"kind": kind, "at_s": event.at_s, **detail})

    def _program_pid(self, name: str) -> int:
        out = self.stack.supervisorctl(self.env, "pid", name).strip()
        return int(out)

    def kill_worker(self) -> dict[str, Any]:
        count = int(self.env.get("WORKER_COUNT", "2"))
        name = f"worker:worker-{random.randrange(count):02d}"
        pid = self._program_pid(name)
        os.kill(pid, signal.SIGKILL)
        return {"program": name, "pid": pid}

    def kill_dispatcher(self) -> dict[str, Any]:
        pid = self._program_pid("dispatcher")
        os.kill(pid, signal.SIGKILL)
        return {"pid": pid}

    def redis_restart_wiped(self) -> dict[str, Any]:
        rs = self.stack.redis
        rs.stop(sig_kill=True)
        for path in rs.dir.iterdir():
            if path.name.endswith((".rdb", ".aof")) or path.name == "appendonlydir":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        time.sleep(1)
        rs.start(detach=True)
        return {"port": rs.port}

    def postgres_terminate_backends(self) -> dict[str, Any]:
        engine = create_engine(self.env["DATABASE_URL"], pool_size=1)
        try:
            with engine.connect() as conn:
                n = db.fetch_value(conn, "chaos_terminate_backends", package="loadtest")
        finally:
            engine.dispose()
        return {"terminated": int(n or 0)}

    def model_faults(self) -> dict[str, Any]:
        base = self.env["LOCAL_LLM_BASE_URL"].removesuffix("/v1")
        body = {
            "error_rate": 0.3,
            "timeout_rate": 0.1,
            "malformed_rate": 0.3,
            "duration_s": self.fault_window_s,
        }
        httpx.post(f"{base}/admin/faults", json=body, timeout=5).raise_for_status()
        return body
