"""The SLO gate computes its figures from Postgres and fails on every kind of breach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from core.db import libpq_url
from loadtest.slo_gate import Thresholds, evaluate, percentile, run_gate

AUDIT = Path(__file__).resolve().parents[2] / "loadtest" / "audit.sql"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _insert(conn: psycopg.Connection, i: int, status: str, wait: float, e2e: float) -> None:
    created = T0 + timedelta(seconds=i * 3)
    conn.execute(
        "INSERT INTO ingredient_match_queue (raw_name, status, created_at, processing_started_at, "
        "resolved_at,"
        " provider, attempt_count) VALUES (%s, %s, %s, %s, %s, 'rules', 1)",
        (
            f"row {i}",
            status,
            created,
            created + timedelta(seconds=wait) if status != "pending" else None,
            created + timedelta(seconds=e2e) if status == "resolved" else None,
        ),
    )
    if status in ("failed", "rejected"):  # their terminal time is updated_at (set by trigger)
        conn.execute(
            "UPDATE ingredient_match_queue SET updated_at = %s WHERE raw_name = %s",
            (created + timedelta(seconds=e2e), f"row {i}"),
        )


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == 10
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50) == 5
    assert percentile(list(range(1, 101)), 99) == 99


def test_a_healthy_run_passes_with_exact_figures(engine: sa.Engine, database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("ALTER TABLE ingredient_match_queue DISABLE TRIGGER ingredient_match_queue_touch")
        for i in range(200):  # one row every 3 s for 10 minutes: 100 per 5-minute window
            _insert(conn, i, "resolved" if i % 50 else "rejected", wait=1 + (i % 10) / 10, e2e=2)
    report = evaluate(engine, T0, T0 + timedelta(minutes=10), Thresholds())
    assert report.rows == 200
    assert report.by_status == {"resolved": 196, "rejected": 4}
    assert [w["rows"] for w in report.windows] == [99, 100] or [w["rows"] for w in report.windows] == [
        100,
        100,
    ]
    assert report.wait_s["p50"] == pytest.approx(1.4) and report.wait_s["p95"] == pytest.approx(1.9)
    assert report.failed_rate == 0 and report.lost == 0 and report.resolved_twice == 0
    assert report.passed, report.breaches


def test_every_breach_is_reported(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    url = libpq_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(AUDIT.read_text())
        conn.execute("ALTER TABLE ingredient_match_queue DISABLE TRIGGER ingredient_match_queue_touch")
        for i in range(40):
            status = "failed" if i < 4 else "pending" if i < 6 else "resolved"
            wait = 400 if i % 5 == 0 else 1  # 8 of 40 rows waited 400 s: p95 breached
            _insert(conn, i, status, wait=wait, e2e=wait + 1)
        # a row resolved, taken back and resolved again: the audit trigger sees both transitions
        for status in ("processing", "resolved", "processing", "resolved"):
            conn.execute("UPDATE ingredient_match_queue SET status = %s WHERE raw_name = 'row 11'", (status,))
    report = run_gate(database_url, T0, T0 + timedelta(minutes=2), Thresholds(), tmp_path)
    assert not report.passed
    text = " | ".join(report.breaches)
    assert "rows lost" in text and report.lost == 2
    assert "resolved twice" in text and report.resolved_twice == 1
    assert "failed rate" in text and report.failed_rate == pytest.approx(4 / 38)
    assert "p95 wait" in text
    assert "throughput" not in text, text  # 30 finished within the 2 minutes = 75 per 5 minutes
    assert (tmp_path / "slo.json").is_file()
    assert (tmp_path / "wait_over_time.png").stat().st_size > 1000
    assert (tmp_path / "throughput.png").stat().st_size > 1000


def test_too_little_throughput_is_a_breach(engine: sa.Engine, database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("ALTER TABLE ingredient_match_queue DISABLE TRIGGER ingredient_match_queue_touch")
        for i in range(30):  # 30 rows in 5 minutes (created 3 s apart, but only the first 30)
            _insert(conn, i, "resolved", wait=1, e2e=2)
    report = evaluate(engine, T0, T0 + timedelta(minutes=5), Thresholds())
    assert report.min_rows_per_5min == 30
    assert any("throughput" in b for b in report.breaches)
