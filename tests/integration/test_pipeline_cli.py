"""The pipeline's CLI commands as an operator runs them: enqueue, drain (live and dry run),
status, requeue-expired, shadow-report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.pipeline_support import snapshot, status_counts


def sous(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QUEUE_", "DRY_RUN", "ROLLOUT_"))}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**base, "LLM_PROVIDERS": "rules", "QUEUE_SOURCE": "any", "LOG_LEVEL": "INFO", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def last_json(out: str) -> dict[str, object]:
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_operator_commands(engine: sa.Engine, database_url: str, redis_url: str, tmp_path: Path) -> None:
    db = {"DATABASE_URL": database_url}
    added = sous("enqueue", "onion", "2 cups flour", "dish soap", **db)
    assert added.returncode == 0, added.stderr
    names = tmp_path / "names.txt"
    names.write_text("garlic\n\n1 tbsp olive oil\n")
    added_file = sous("enqueue", "--file", str(names), **db)
    ids = added.stdout.split() + added_file.stdout.split()
    assert len(ids) == 5 and all(i.isdigit() for i in ids)

    empty = sous("enqueue", **db)
    assert empty.returncode == 1 and "no names given" in empty.stderr

    status = sous("status", "--json", **db, REDIS_URL=redis_url)
    assert status.returncode == 2, status.stderr  # an alert fires: exit 2 for cron and monitoring
    s = json.loads(status.stdout)
    assert s["depth"]["pending"] == 5 and s["fleet"]["live_workers"] == 0
    assert s["oldest_pending_s"] >= 0 and set(s["windows"]) == {"5m", "1h", "24h"}
    assert "no_live_worker" in {a["name"] for a in s["alerts"]}  # rows wait and no worker is up

    before = snapshot(engine)
    dry = sous("drain", **db, ROLLOUT_STAGE="shadow")
    assert dry.returncode == 0, dry.stderr
    assert last_json(dry.stdout)["dry_run"] is True and last_json(dry.stdout)["claimed"] == 5
    assert snapshot(engine) == before
    # The stage comes from the fleet's cycles (queue_runs), not from this shell's environment.
    fleet = json.loads(sous("status", "--json", **db).stdout)
    assert fleet["stage"]["rollout_stage"] == "shadow" and fleet["dry_run"] is True
    assert fleet["stage"]["providers"] == ["rules"]
    assert "oldest_pending" not in {a["name"] for a in fleet["alerts"]}  # dry run: rows wait on purpose

    one = sous("drain", "--max-cycles", "1", "--limit", "2", **db)
    assert last_json(one.stdout)["claimed"] == 2
    rest = sous("drain", **db)
    assert last_json(rest.stdout)["claimed"] == 3
    assert status_counts(engine) == {"resolved": 4, "rejected": 1}

    report = sous("shadow-report", **db)
    assert report.returncode == 0, report.stderr
    r = json.loads(report.stdout)
    assert r["compared"] == 5 and r["agreement_pct"] == 100.0

    requeued = sous("requeue-expired", **db)
    assert json.loads(requeued.stdout) == {"requeued": 0}

    text = sous("status", **db)
    assert text.returncode == 0 and "resolved 4" in text.stdout and "live workers" in text.stdout

    missing = sous("drain", DATABASE_URL="")
    assert missing.returncode == 78 and "DATABASE_URL" in missing.stderr
