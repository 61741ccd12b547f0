"""Helpers for the ingredient-pipeline tests: real `sous` processes (sim, workers, dispatcher),
their JSON logs, seeding, and an audit trigger that counts transitions to `resolved`."""

from __future__ import annotations

import json
import signal
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from devtools.procs import SousProcess, box_env, wait_http
from devtools.services import free_port

AUDIT_SQL = """
CREATE TABLE test_resolved_audit (queue_id bigint NOT NULL, attempt integer, at timestamptz DEFAULT now());
CREATE FUNCTION test_audit_resolved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'resolved' AND OLD.status IS DISTINCT FROM 'resolved' THEN
    INSERT INTO test_resolved_audit (queue_id, attempt) VALUES (NEW.id, NEW.attempt_count);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_audit_resolved AFTER UPDATE ON ingredient_match_queue
  FOR EACH ROW EXECUTE FUNCTION test_audit_resolved();
"""

TERMINAL = ("resolved", "rejected", "failed")


class Stack:
    """Starts and always cleans up the processes of one test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="sous-pipeline-"))
        self.procs: list[SousProcess] = []
        self.sim_port: int | None = None

    def start(self, name: str, *args: str, **env: str) -> SousProcess:
        proc = SousProcess(name, list(args), {**self.env, **env}, self.dir)
        self.procs.append(proc)
        return proc

    def start_sim(self, profile: str = "instant", *args: str) -> SousProcess:
        self.sim_port = free_port()
        proc = self.start("sim", "sim", "--port", str(self.sim_port), "--profile", profile, *args)
        wait_http(f"{self.sim_base}/health", 30, proc.tail)
        self.env.update(
            LOCAL_LLM_ENABLED="true",
            LOCAL_LLM_BASE_URL=f"{self.sim_base}/v1",
            LOCAL_LLM_MODEL="qwen3-8b-instruct",
        )
        return proc

    @property
    def sim_base(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def sim_metrics(self) -> str:
        with urllib.request.urlopen(f"{self.sim_base}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def sim_requests(self) -> int:
        with urllib.request.urlopen(f"{self.sim_base}/admin/stats", timeout=5) as resp:
            return int(json.loads(resp.read())["chat_requests"])

    def sim_faults(self, **faults: float) -> None:
        req = urllib.request.Request(
            f"{self.sim_base}/admin/faults",
            data=json.dumps(faults).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.procs)


def base_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    defaults = {
        "REDIS_URL": redis_url,
        "LOCAL_LLM_ENABLED": "false",
        "QUEUE_BATCH_WINDOW_MS": "50",
        "WORKER_INTERVAL_SECONDS": "2",
        "BOX_ID": "test-box",
        "LOG_LEVEL": "INFO",
    }
    return box_env(database_url, **{**defaults, **extra})


@contextmanager
def stack(database_url: str, redis_url: str, **extra: str) -> Iterator[Stack]:
    s = Stack(base_env(database_url, redis_url, **extra))
    try:
        yield s
    finally:
        s.close()


def seed(engine: sa.Engine, names: list[str], source: str = "scraper") -> list[int]:
    rows = [{"raw_name": n, "cleaned_name": n, "source": source} for n in names]
    with engine.begin() as conn:
        result = conn.execute(
            sa.text(
                "INSERT INTO ingredient_match_queue (raw_name, cleaned_name, source) "
                "SELECT r->>'raw_name', r->>'cleaned_name', r->>'source' "
                "FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS t(r, ord) "
                "ORDER BY ord RETURNING id"
            ),
            {"rows": json.dumps(rows)},
        )
        return [int(r[0]) for r in result]


def install_audit(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(AUDIT_SQL)


def status_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM ingredient_match_queue GROUP BY status"))
        return {str(r[0]): int(r[1]) for r in rows}


def all_terminal(engine: sa.Engine, total: int) -> bool:
    counts = status_counts(engine)
    return sum(counts.get(s, 0) for s in TERMINAL) == total


def snapshot(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [
            str(r[0])
            for r in conn.execute(sa.text("SELECT q::text FROM ingredient_match_queue q ORDER BY id"))
        ]


def stop_gently(proc: SousProcess) -> None:
    proc.signal(signal.SIGTERM)
