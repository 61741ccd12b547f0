"""The numbers of /metrics, /api/queue/stats and /readyz against what is in Postgres, the
alert conditions, and /readyz following Redis and Postgres going away and coming back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from core.migrate import upgrade
from core.observability import SNAPSHOT_KEY, status_alerts
from devtools.procs import metric_total
from devtools.services import PostgresServer, RedisServer, free_port
from tests.api_support import SERVICE_KEY, api_settings

# (status, source, provider, rows, extra SQL columns)
ROWS = [
    ("pending", "scraper", None, 7),
    ("pending", "recipe", None, 3),
    ("resolved", "scraper", "local", 40),
    ("resolved", "recipe", "rules", 5),
    ("rejected", "scraper", "rules", 4),
    ("failed", "scraper", "local", 2),
]


def seed_rows(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for status, source, provider, n in ROWS:
            done = status in ("resolved", "rejected", "failed")
            conn.execute(
                sa.text(
                    "INSERT INTO ingredient_match_queue (raw_name, cleaned_name, source, status, provider, "
                    "created_at, processing_started_at, resolved_at, last_error, attempt_count) "
                    "SELECT 'item ' || g, 'item ' || g, :source, :status, :provider, "
                    "now() - interval '10 minutes', "
                    "CASE WHEN :done THEN now() - interval '10 minutes' + g * interval '1 second' END, "
                    "CASE WHEN :status = 'resolved' THEN now() END, "
                    "CASE WHEN :status = 'rejected' THEN 'not food' "
                    "WHEN :status = 'failed' THEN 'model timeout' END, "
                    "CASE WHEN :done THEN 1 ELSE 0 END "
                    "FROM generate_series(1, :n) g"
                ),
                {"source": source, "status": status, "provider": provider, "n": n, "done": done},
            )
        # Two rows a dead worker held: their lease ran out a minute ago.
        conn.execute(
            sa.text(
                "INSERT INTO ingredient_match_queue (raw_name, status, attempt_count, processing_started_at, "
                "processing_lease_expires_at) "
                "SELECT 'held ' || g, 'processing', 1, now() - interval '5 minutes', "
                "now() - interval '1 minute' FROM generate_series(1, 2) g"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO queue_runs (started_at, finished_at, claimed, chunks, resolved, pending_after, "
                "lag_p50_ms, lag_p95_ms) VALUES "
                "(now() - interval '2 minutes', now(), 30, 2, 0, 12, 100, 900), "
                "(now() - interval '1 minute', now(), 20, 1, 0, 10, 200, 1500), "
                "(now() - interval '2 hours', now(), 500, 9, 0, 0, 50, 60)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO menu_extraction_jobs (user_id, image_hash) VALUES (gen_random_uuid(), 'h')")
        )


@pytest.fixture
def client(database_url: str, redis_url: str, engine: sa.Engine) -> Iterator[TestClient]:
    seed_rows(engine)
    settings = api_settings(database_url, redis_url, alert_queue_depth=5, alert_failure_min_rows=10)
    with TestClient(create_app(settings), headers={"X-Service-Key": SERVICE_KEY}) as c:
        yield c


def test_metrics_equal_the_database(client: TestClient, engine: sa.Engine) -> None:
    client.get("/healthz")
    text = client.get("/metrics").text
    for status, source, provider, n in ROWS:
        if status == "pending":
            sample = f'sous_queue_depth{{source="{source}",status="pending"}} {float(n)}'
        else:
            labels = f'provider="{provider}",source="{source}",status="{status}"'
            sample = f"sous_queue_rows_finished_total{{{labels}}} {float(n)}"
        assert sample in text, sample
    assert 'sous_queue_depth{source="scraper",status="processing"} 2.0' in text
    assert "sous_queue_expired_leases 2.0" in text
    assert 'sous_menu_jobs{status="queued"} 1.0' in text
    with engine.connect() as conn:
        oldest = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM now() - min(created_at)) "
                "FROM ingredient_match_queue WHERE status = 'pending'"
            )
        ).scalar_one()
    assert abs(metric_total(text, "sous_queue_oldest_pending_seconds") - float(oldest)) < 5
    # The wait histogram: every row claimed in the last hour (terminal ones, and the 2 held).
    assert metric_total(text, 'sous_queue_wait_seconds_bucket{le="+Inf"}') == 40 + 5 + 4 + 2 + 2
    assert 'sous_alert_firing{alert="queue_depth"} 1.0' in text  # 10 pending > 5
    assert 'sous_alert_firing{alert="failure_rate"} 1.0' in text  # 2 of 47 > 2 %
    assert 'sous_alert_firing{alert="no_live_worker"} 1.0' in text  # no RQ worker runs here
    assert 'sous_alert_firing{alert="expired_leases"} 0.0' in text
    assert 'sous_api_request_seconds_bucket{le="+Inf",method="GET",route="/healthz"}' in text


def test_queue_stats_window_and_alerts(client: TestClient) -> None:
    stats = client.get("/api/queue/stats", params={"window": "5m"}).json()
    assert stats["ingredients"] == {
        "pending": 10,
        "processing": 2,
        "resolved": 45,
        "rejected": 4,
        "failed": 2,
    }
    assert stats["depth"] == {"pending": {"scraper": 7, "recipe": 3}, "processing": {"scraper": 2}}
    assert stats["runs"]["cycles"] == 2 and stats["runs"]["claimed"] == 50
    assert (
        stats["runs"]["lag_p95_ms"] == 1500.0 and stats["runs"]["lag_p50_ms"] == 140.0
    )  # (30*100+20*200)/50
    assert stats["rows"]["resolved"] == 45 and stats["rows"]["failed"] == 2 and stats["rows"]["rejected"] == 4
    assert stats["failure_rate"] == pytest.approx(2 / 47)
    # 10 pending > 5; 2 of 47 failed > 2 %; pending for 10 min > 5 min; no RQ worker here.
    assert {a["name"] for a in stats["alerts"]} == {
        "queue_depth",
        "failure_rate",
        "oldest_pending",
        "no_live_worker",
    }
    day = client.get("/api/queue/stats", params={"window": "24h"}).json()
    assert day["runs"]["cycles"] == 3 and day["runs"]["claimed"] == 550
    bad = client.get("/api/queue/stats", params={"window": "7d"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_INPUT"


def test_readyz_reports_alerts_without_failing(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "alerting" and body["checks"] == {"database": "ok", "redis": "ok", "model": "ok"}
    assert "queue_depth" in {a["name"] for a in body["alerts"]}


def test_dashboard_data(client: TestClient) -> None:
    data = client.get("/api/dashboard/data").json()
    assert sum(p["claimed"] for p in data["series"]) == 50
    assert sum(p["resolved"] for p in data["series"]) == 45
    assert {f["reason"] for f in data["failures"]["ingredients"]} == {"model timeout"}
    assert {f["reason"] for f in data["failures"]["rejected"]} == {"not food"}  # not a failure
    assert data["menus"]["queued"] == 1
    assert data["fleet"]["live_workers"] == 0


def test_snapshot_is_shared_and_counters_never_step_back(
    database_url: str, redis_url: str, engine: sa.Engine
) -> None:
    """Two API processes (two apps here) serve the one snapshot in Redis."""
    seed_rows(engine)
    settings = api_settings(database_url, redis_url, obs_snapshot_seconds=3600)
    key = {"X-Service-Key": SERVICE_KEY}
    with (
        TestClient(create_app(settings), headers=key) as a,
        TestClient(create_app(settings), headers=key) as b,
    ):
        first = metric_total(a.get("/metrics").text, "sous_queue_rows_finished_total")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE ingredient_match_queue SET status = 'resolved', provider = 'local' "
                    "WHERE status = 'pending'"
                )
            )
        # b has never computed anything itself: it serves a's snapshot, not a newer own one.
        assert metric_total(b.get("/metrics").text, "sous_queue_rows_finished_total") == first == 51
        client = redis_lib.Redis.from_url(redis_url)
        snap = json.loads(client.get(SNAPSHOT_KEY) or b"{}")
        snap["computed_at"] -= 7200  # expired: the next scrape refreshes it in the background
        client.set(SNAPSHOT_KEY, json.dumps(snap))
        client.close()
        b.get("/metrics")
        deadline = 50
        while metric_total(a.get("/metrics").text, "sous_queue_rows_finished_total") != 61 and deadline:
            deadline -= 1
            time.sleep(0.1)
        assert metric_total(a.get("/metrics").text, "sous_queue_rows_finished_total") == 61


def test_readyz_follows_redis_and_postgres() -> None:
    pg, rds = PostgresServer(), RedisServer()
    try:
        url = pg.start()
        upgrade(url)
        rds.start()
        app = create_app(api_settings(url, rds.url))
        with TestClient(app, headers={"X-Service-Key": SERVICE_KEY}) as client:
            assert client.get("/readyz").status_code == 200
            rds.stop()
            r = client.get("/readyz")
            assert r.status_code == 503 and r.json()["code"] == "NOT_READY"
            assert r.json()["checks"]["redis"] == "down" and r.json()["checks"]["database"] == "ok"
            assert client.get("/metrics").status_code == 200  # Postgres numbers still served
            rds.start()
            assert client.get("/readyz").status_code == 200
            pg.stop()
            r = client.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["database"] == "down"
            assert "sous_database_up 0.0" in client.get("/metrics").text
            pg.start()
            assert client.get("/readyz").status_code == 200
    finally:
        rds.destroy()
        pg.destroy()


def test_readyz_fails_when_the_configured_model_is_unreachable(database_url: str, redis_url: str) -> None:
    settings = api_settings(database_url, redis_url).model_copy(
        update={
            "llm_providers": "local,openai,rules",  # openai has no key: skipped, never a failure
            "local_llm_enabled": True,
            "local_llm_base_url": f"http://127.0.0.1:{free_port()}/v1",
        }
    )
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["model"] == {"local": "unreachable"}


def test_status_alerts_for_the_cli(database_url: str, redis_url: str, engine: sa.Engine) -> None:
    """What `sous status --json` reports: the same conditions, computed in one go."""
    seed_rows(engine)
    settings = api_settings(database_url, redis_url, alert_queue_depth=5, alert_failure_min_rows=10)
    client = redis_lib.Redis.from_url(redis_url)
    try:
        with engine.connect() as conn:
            fired = status_alerts(conn, client, settings)
    finally:
        client.close()
    assert {a["name"] for a in fired} == {"queue_depth", "failure_rate", "oldest_pending", "no_live_worker"}
    assert next(a for a in fired if a["name"] == "queue_depth")["value"] == 10
