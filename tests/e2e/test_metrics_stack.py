"""Rows driven through the real stack (`sous sim`, two `sous work` RQ workers, `sous dispatch`,
`sous api` with two gunicorn workers, one PROMETHEUS_MULTIPROC_DIR for the box), then /metrics
read back: every counter equals what Postgres, the simulator and the client counted."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa
from rq import Worker

from devtools.procs import metric_total, wait_until
from devtools.services import free_port
from tests.api_support import JWT_SECRET, SERVICE_KEY
from tests.pipeline_support import all_terminal, seed, stack

FOODS = ["onion", "garlic", "salt", "butter", "flour", "olive oil", "egg", "milk", "carrot", "basil"]
JUNK = ["", "paper towels", "dish soap", "<script>alert(1)</script>"]


def _samples(text: str, name: str) -> dict[str, float]:
    """label set -> value for one sample name."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def test_metrics_add_up_across_processes(engine: sa.Engine, database_url: str, redis_url: str) -> None:
    metrics_dir = Path(tempfile.mkdtemp(prefix="sous-test-metrics-"))
    extra = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "SERVICE_API_KEY": SERVICE_KEY,
        "OBS_SNAPSHOT_SECONDS": "0.5",
        "QUEUE_MAX_ATTEMPTS": "1",
        "LOG_LEVEL": "INFO",  # the appliance default; issue 13
    }
    try:
        _drive_and_compare(engine, database_url, redis_url, metrics_dir, extra)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _drive_and_compare(
    engine: sa.Engine, database_url: str, redis_url: str, metrics_dir: Path, extra: dict[str, str]
) -> None:
    port = free_port()
    names = [f"{adj} {food}" for food in FOODS for adj in ("fresh", "chopped", "large")] + JUNK
    with stack(database_url, redis_url, **extra) as s:
        # Some model calls fail (errors by kind, rules fallbacks), and never by luck alone: with
        # seed 1 the simulator's first draw (0.13) fails the first call and the second (0.85) passes.
        s.start_sim("instant", "--seed", "1")
        s.sim_faults(error_rate=0.3)
        api = s.start("api", "api", "--port", str(port), "--workers", "2")
        for i in range(2):
            s.start(f"worker{i}", "work", "--queues", "ingredients")
        conn = redis.Redis.from_url(redis_url)
        wait_until(lambda: Worker.count(connection=conn) >= 2, 30, s.logs)
        conn.close()
        s.start("dispatch", "dispatch")
        seed(engine, names)
        wait_until(lambda: all_terminal(engine, len(names)), 60, s.logs)

        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ok(f"{base}/healthz"), 30, api.tail)
        sent = _spread_over_workers(f"{base}/healthz", metrics_dir)
        with httpx.Client(base_url=base, timeout=10) as http:
            with engine.connect() as c:
                db_counts = {
                    (str(r[0]), str(r[1])): int(r[2])
                    for r in c.execute(
                        sa.text(
                            "SELECT status, coalesce(provider, 'none'), count(*) FROM ingredient_match_queue "
                            "GROUP BY 1, 2"
                        )
                    )
                }
            assert {k[0] for k in db_counts} <= {"resolved", "rejected"}  # rules catch the model's faults

            def finished() -> dict[tuple[str, str], int]:
                out: dict[tuple[str, str], int] = {}
                for labels, v in _samples(
                    http.get("/metrics").text, "sous_queue_rows_finished_total"
                ).items():
                    key = (_label(labels, "status"), _label(labels, "provider"))
                    out[key] = out.get(key, 0) + int(v)
                return out

            # The snapshot refreshes in the background: the counters catch up within a second.
            wait_until(lambda: finished() == db_counts, 15, lambda: f"{finished()} != {db_counts}")
            text = http.get("/metrics").text
            assert 'sous_queue_depth{source="scraper",status="pending"} 0.0' in text
            assert metric_total(text, 'sous_queue_wait_seconds_bucket{le="+Inf"}') == len(names)

            # Model calls happened in the two RQ worker processes; the API sums their files.
            calls = _samples(text, "sous_provider_calls_total")
            local_calls = sum(v for k, v in calls.items() if 'provider="local"' in k)
            assert local_calls == s.sim_requests() > 0
            errors = sum(v for k, v in calls.items() if 'provider="local"' in k and 'outcome="ok"' not in k)
            assert errors > 0
            assert metric_total(text, "sous_provider_latency_seconds_count") == local_calls

            # API latency by route, summed over both gunicorn workers (each wrote its own file).
            assert len(_api_files(metrics_dir)) == 2
            healthz = _samples(text, "sous_api_requests_total")
            served = sum(v for k, v in healthz.items() if 'route="/healthz"' in k)
            assert served == sent + 1  # and the one that found the API up
            assert served == sum(
                v
                for k, v in _samples(text, "sous_api_request_seconds_count").items()
                if 'route="/healthz"' in k
            )
            stats = http.get(
                "/api/queue/stats", params={"window": "5m"}, headers={"X-Service-Key": SERVICE_KEY}
            ).json()
            assert stats["live_workers"] == 2 and stats["rows"]["claimed"] == len(names)


def _api_files(metrics_dir: Path) -> list[Path]:
    return [p for p in metrics_dir.glob("counter_*.db") if b"sous_api_requests_total" in p.read_bytes()]


def _spread_over_workers(url: str, metrics_dir: Path) -> int:
    """Requests on fresh connections, 8 at a time, until both gunicorn workers have served
    some (each has its own metrics file); returns how many were sent."""
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(_api_files(metrics_dir)) < 2:
            assert sent < 400, "one gunicorn worker served everything"
            codes = list(pool.map(lambda _: httpx.get(url, timeout=10).status_code, range(8)))
            assert codes == [200] * 8
            sent += 8
    return sent


def _label(labels: str, name: str) -> str:
    return labels.split(f'{name}="', 1)[1].split('"', 1)[0]


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
