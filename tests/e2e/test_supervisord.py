"""The supervisord config runs for real: dispatcher, 3 workers and the API (plus the simulator)
against throwaway services process rows, and SIGTERM stops them within stopwaitsecs without
leaving a row in `processing`."""

from __future__ import annotations

import configparser
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from core import queue
from core.db import create_engine, transaction
from devtools.stack import SUPERVISORD_CONF, LocalStack


@pytest.fixture
def stack() -> Iterator[tuple[LocalStack, dict[str, str]]]:
    # Not pytest's tmp_path: initdb runs as `postgres`, which cannot enter root's 0700 pytest dir.
    state = Path(tempfile.mkdtemp(prefix="sous-supervisord-"))
    local = LocalStack(state, use_env_services=False)
    services = local.start_services()
    env = local.stack_env(
        services,
        {
            "WORKER_COUNT": "3",
            "SOUS_SIM_PROFILE": "instant",
            "QUEUE_BATCH_WINDOW_MS": "100",
            "WORKER_INTERVAL_SECONDS": "2",
            "API_PORT": str(local._port("api")),
        },
    )
    local.start(env)
    try:
        yield local, env
    finally:
        local.stop(timeout=60)
        local.stop_services()
        shutil.rmtree(state, ignore_errors=True)


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, count(*) AS n FROM ingredient_match_queue GROUP BY status")
        )
        return {r.status: int(r.n) for r in rows}


def _wait_for(engine: sa.Engine, done: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts = _counts(engine)
    while time.monotonic() < deadline:
        counts = _counts(engine)
        if sum(counts.get(s, 0) for s in ("resolved", "rejected", "failed")) >= done:
            break
        time.sleep(0.5)
    return counts


def test_supervisord_runs_the_box_and_stops_it_cleanly(stack: tuple[LocalStack, dict[str, str]]) -> None:
    local, env = stack
    status = local.supervisorctl(env, "status")
    for program in ("dispatcher", "worker:worker-00", "worker:worker-01", "worker:worker-02", "api", "sim"):
        assert f"{program}" in status and "RUNNING" in status.split(program, 1)[1].splitlines()[0], status
    assert httpx.get(f"http://127.0.0.1:{env['API_PORT']}/healthz", timeout=5).status_code == 200

    engine = create_engine(env["DATABASE_URL"], pool_size=1)
    try:
        names = [
            f"{n} cups chopped {food}" for n in range(1, 11) for food in ("onion", "carrot", "leek", "kale")
        ]
        with transaction(engine) as conn:
            queue.insert_rows(conn, [{"raw_name": name} for name in names])
        counts = _wait_for(engine, len(names), timeout=60)
        assert counts.get("resolved", 0) == len(names), counts

        # A backlog in flight, then SIGTERM to supervisord: every program gets TERM and its
        # stopwaitsecs; workers finish or release their chunk.
        more = [f"{n} g sliced mushroom variety {n}" for n in range(400)]
        with transaction(engine) as conn:
            queue.insert_rows(conn, [{"raw_name": name} for name in more])
        deadline = time.monotonic() + 20
        while _counts(engine).get("processing", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        conf = configparser.RawConfigParser()
        conf.read(SUPERVISORD_CONF)
        longest_stop = max(
            int(conf.get(s, "stopwaitsecs")) for s in conf.sections() if s.startswith("program:")
        )
        started = time.monotonic()
        local.stop(timeout=longest_stop + 10)
        took = time.monotonic() - started
        assert local.supervisor_pid() is None, "supervisord still running"
        stops = [ln for ln in (local.state / "stack.log").read_text().splitlines() if "stopped:" in ln]
        assert took < longest_stop, f"stop took {took:.1f} s, stopwaitsecs is {longest_stop}: {stops}"
        counts = _counts(engine)
        assert counts.get("processing", 0) == 0, counts
        assert sum(counts.values()) == len(names) + len(more)
    finally:
        engine.dispose()
