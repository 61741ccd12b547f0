"""`make soak HOST=`: the soak drives a deployment it did not start and audits the run in that
deployment's database. The "box" here is real processes started by the test (`sous api`, the
dispatcher, an RQ worker on the rules provider) on real Postgres and Redis; the soak gets
only its URL and a .env file with the credentials and DATABASE_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psycopg
import redis
from rq import Worker

from core.db import libpq_url
from devtools.procs import wait_until
from devtools.services import free_port
from tests.api_support import JWT_SECRET, ROOT, SERVICE_KEY
from tests.pipeline_support import stack


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_soak_host_drives_a_running_box_and_audits_its_database(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    extra = {
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="sous-test-metrics-"),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "SERVICE_API_KEY": SERVICE_KEY,
        "LLM_PROVIDERS": "rules",
    }
    with stack(database_url, redis_url, **extra) as box:
        api = box.start("api", "api", "--port", str(port), "--workers", "1")
        box.start("dispatcher", "dispatch")
        box.start("worker0", "work", "--queues", "ingredients")
        wait_until(lambda: _ok(f"http://127.0.0.1:{port}/healthz"), 30, api.tail)
        rq_redis = redis.Redis.from_url(redis_url)
        wait_until(lambda: Worker.count(connection=rq_redis) >= 1, 30, box.logs)
        rq_redis.close()

        # The box's .env, as an operator has it; the soak's own environment carries none of it.
        env_file = tmp_path / ".env"
        env_file.write_text(
            f"# the box\nSERVICE_API_KEY={SERVICE_KEY}   # ingest\nDATABASE_URL={database_url}\nGPU=sim\n"
        )
        clean = {k: v for k, v in os.environ.items() if k not in ("SERVICE_API_KEY", "DATABASE_URL")}
        out = tmp_path / "results"
        result = subprocess.run(
            [
                sys.executable,
                *("-m", "loadtest.soak", "--host", f"http://127.0.0.1:{port}"),
                *("--env-file", str(env_file), "--out", str(out)),
                # 2 rows/s for 8 s; one short window, so the gate scales it to 5 minutes.
                *("--duration", "8", "--rows-per-5min", "600", "--drain-timeout", "60"),
            ],
            env=clean,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + box.logs()
        assert "no stack started" in result.stdout and "stack up" not in result.stdout

    report = json.loads((out / "slo.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert report["passed"] and report["lost"] == 0 and report["resolved_twice"] == 0
    # Every row Locust posted is in the box's database, and each finished exactly once.
    assert report["rows"] >= 8 and sum(report["by_status"].values()) == report["rows"]
    with psycopg.connect(libpq_url(database_url)) as conn:
        transitions = conn.execute("SELECT count(*) FROM soak_transitions").fetchone()
        trigger = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'soak_record_transition'"
        ).fetchone()
    assert transitions == (report["rows"],)
    assert trigger == (0,)  # installed for the run, dropped afterwards: a box keeps no audit cost
    # Locust's HTML report beside the gate's JSON and charts.
    assert "locust" in (out / "locust.html").read_text()[:5000].lower()
    for name in ("locust_stats.csv", "wait_over_time.png", "throughput.png"):
        assert (out / name).stat().st_size > 0, name
    assert run["host"] == f"http://127.0.0.1:{port}" and "workers" not in run["args"]
    locust_rows = sum(1 for _ in (out / "locust_stats.csv").open()) - 1
    assert locust_rows >= 1


def test_soak_host_without_credentials_is_one_line(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("SERVICE_API_KEY", "DATABASE_URL")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.soak",
            "--host",
            "http://127.0.0.1:9",
            "--env-file",
            str(tmp_path / "x"),
        ],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        == "soak --host: set SERVICE_API_KEY and DATABASE_URL (environment or --env-file)"
    )
