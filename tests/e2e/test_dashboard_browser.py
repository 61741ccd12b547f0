"""/dashboard in real headless Chromium against the real API (`sous api`), a real RQ worker and
the simulator: the page renders numbers from the database, draws its charts, logs nothing to
the console, and its screenshot is kept in the test's tmp dir (with SOUS_UPDATE_DOCS=1 also as
docs/dashboard.png)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa
from rq import Worker

from loadtest.procs import wait_until
from tests.api_support import JWT_SECRET, ROOT, SERVICE_KEY
from tests.pipeline_support import stack
from worker.devservices import free_port

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
    "--window-size=1400,960",
    # Chromium waits (in virtual time) for the page's fetches and first refresh before dumping.
    "--virtual-time-budget=8000",
]

SEED_SQL = """
INSERT INTO queue_runs (started_at, finished_at, box_id, trigger, claimed, chunks, pending_after,
                        lag_p50_ms, lag_p95_ms)
SELECT now() - make_interval(secs => g * 20), now() - make_interval(secs => g * 20), 'box-1', 'notify',
       (25 + 20 * sin(g / 9.0))::int, 2, (120 + 100 * cos(g / 14.0))::int,
       300 + 200 * sin(g / 7.0), 900 + 600 * abs(sin(g / 11.0))
  FROM generate_series(1, 178) g;
INSERT INTO ingredient_match_queue (raw_name, cleaned_name, source, status, provider, created_at,
                                    processing_started_at, resolved_at, canonical_name)
SELECT 'row ' || g, 'row ' || g, 'scraper', 'resolved', CASE WHEN g % 4 = 0 THEN 'rules' ELSE 'local' END,
       now() - make_interval(secs => g), now() - make_interval(secs => g) + interval '1 second',
       now() - make_interval(secs => g) + interval '2 seconds', 'row'
  FROM generate_series(1, 3500) g;
INSERT INTO ingredient_match_queue (raw_name, cleaned_name, status, provider, last_error, attempt_count,
                                    processing_started_at)
VALUES ('paper towels', 'paper towels', 'rejected', 'rules', 'not a food: household product', 1, now()),
       ('smoked paprika', 'smoked paprika', 'failed', 'none',
        'resolver error: model timed out after 20 s', 3, now());
INSERT INTO ingredient_match_queue (raw_name, cleaned_name, source)
SELECT 'waiting ' || g, 'waiting ' || g, 'recipe' FROM generate_series(1, 42) g;
INSERT INTO menu_extraction_jobs (user_id, image_hash, status, error_message, completed_at)
VALUES (gen_random_uuid(), 'a', 'completed', NULL, now()),
       (gen_random_uuid(), 'b', 'failed', 'OCR found no text in the image', now()),
       (gen_random_uuid(), 'c', 'queued', NULL, NULL);
"""


def test_dashboard_renders_in_chromium(
    engine: sa.Engine, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    # Not skipped when missing: `make test` installs it (scripts/system-deps.sh).
    assert CHROMIUM, "Debian's chromium package is missing: run scripts/system-deps.sh"
    with engine.begin() as conn:
        for statement in SEED_SQL.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement))
    metrics_dir = Path(tempfile.mkdtemp(prefix="sous-test-metrics-"))
    port = free_port()
    extra = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "SERVICE_API_KEY": SERVICE_KEY,
        "LOG_LEVEL": "INFO",  # the appliance default; issue 13
    }
    try:
        with stack(database_url, redis_url, **extra) as s:
            s.start_sim("instant")
            # Every model call fails for the first batch (a rate below 1 made this test a coin
            # toss: 12 calls at 0.25 all succeed 3% of the time), then the model recovers.
            s.sim_faults(error_rate=1.0)
            api = s.start("api", "api", "--port", str(port), "--workers", "1")
            s.start("worker0", "work", "--queues", "ingredients")
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _ok(f"{base}/healthz"), 30, api.tail)
            rq_redis = redis.Redis.from_url(redis_url)
            wait_until(lambda: Worker.count(connection=rq_redis) >= 1, 30, s.logs)
            rq_redis.close()
            with httpx.Client(base_url=base, timeout=30, headers={"X-Service-Key": SERVICE_KEY}) as http:
                for i, batch in enumerate(
                    (["2 cups flour", "1 onion"], ["butter", "3 eggs", "salt"], ["basil"]) * 4
                ):
                    r = http.post("/api/ingredients/standardize", json={"ingredients": batch})
                    assert r.status_code == 200, r.text
                    if i == 0:
                        s.sim_faults(error_rate=0.0)
            dom, console = _chromium(f"{base}/dashboard", tmp_path)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)

    assert not console, "\n".join(console)
    assert _text(dom, "error") == ""  # no failed refresh
    assert re.search(r'id="updated">updated \d\d:\d\d:\d\d', dom), dom[:500]
    assert _text(dom, "c-pending") == "42"
    assert _text(dom, "c-workers") == "1"
    assert _text(dom, "c-expired") == "0"
    assert re.fullmatch(r"\d+\.\d", _text(dom, "c-throughput"))  # 3,502 rows in the hour
    for chart in ("chart-depth", "chart-throughput", "chart-wait"):
        svg = re.search(rf'<svg id="{chart}".*?</svg>', dom, re.S)
        assert svg, chart
        paths = re.findall(r'<path d="([^"]+)"', svg.group(0))
        # A point per minute of the hour with data (the seeded cycles cover all but the last).
        assert paths and all(len(re.findall("[ML]", p)) >= 58 for p in paths), (chart, paths)
        ys = {float(y) for p in paths for y in re.findall(r"[ML][\d.]+ ([\d.]+)", p)}
        assert len(ys) > 5, (chart, ys)  # the line moves: data, not a flat zero
    assert "not a food: household product" in dom and "model timed out" in dom
    assert "OCR found no text in the image" in dom
    providers = re.search(r'<table id="providers">.*?</table>', dom, re.S)
    assert providers and "<td>local</td>" in providers.group(0)
    assert "http_error" in providers.group(0)  # the simulator's injected errors, by kind
    assert "sous-test-box-" in dom  # the live worker's name

    shot = tmp_path / "dashboard.png"
    assert shot.stat().st_size > 20_000
    if os.environ.get("SOUS_UPDATE_DOCS"):  # refresh the picture in the docs on purpose only
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")


def _chromium(url: str, tmp: Path) -> tuple[str, list[str]]:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}",
         f"--screenshot={tmp / 'dashboard.png'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def _text(dom: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}">([^<]*)<', dom)
    assert m, element_id
    return m.group(1)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
