"""The pipeline with DATABASE_URL through a real PgBouncer in transaction mode (as Supabase's
pooler on port 6543): 1,000 rows drain with LISTEN on its own direct connection
(DATABASE_LISTEN_URL), and with no listen URL the sweep alone drains them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from core.db import libpq_url
from devtools.procs import SousProcess
from tests.pgbouncer_support import PgBouncer
from tests.pipeline_support import AUDIT_SQL, stack

ROWS = 1000
FAST = {"QUEUE_CHUNK_MAX_ITEMS": "25", "QUEUE_BATCH_LIMIT": "250", "LLM_PROVIDERS": "rules"}


@pytest.fixture(scope="module")
def pgbouncer(pg_admin_url: str) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(pg_admin_url)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


def _pooled(bouncer: PgBouncer, database_url: str) -> str:
    return bouncer.url_for(libpq_url(database_url).rsplit("/", 1)[1].split("?")[0])


def _insert(pooled: str, tag: str) -> None:
    with psycopg.connect(pooled, autocommit=True, prepare_threshold=None) as conn:
        for part in range(4):  # the scraper's plain inserts, through the pooler
            conn.execute(
                "INSERT INTO ingredient_match_queue (raw_name, cleaned_name) "
                "SELECT '1 cup diced ' || w || g, w || g FROM generate_series(1, %s) g, (VALUES (%s)) v(w)",
                (ROWS // 4, f"{tag}{part}x"),
            )


def _wait_drained(pooled: str, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    live = "SELECT count(*) FROM ingredient_match_queue WHERE status IN ('pending', 'processing')"
    with psycopg.connect(pooled, autocommit=True, prepare_threshold=None) as conn:
        while conn.execute(live).fetchone() != (0,) and time.monotonic() < deadline:
            time.sleep(0.3)
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT queue_id FROM test_resolved_audit GROUP BY 1 HAVING count(*) > 1) d"
        ).fetchone()
        assert twice == (0,)  # no row resolved twice
        return dict(conn.execute("SELECT status, count(*) FROM ingredient_match_queue GROUP BY 1").fetchall())


def _events(proc: SousProcess) -> set[str]:
    sweep = proc.events("dispatch_sweep")
    return {str(e["event"]) for e in proc.events()} | {f"listening={sweep[0]['listening']}" if sweep else ""}


def test_a_transaction_pooler_drains_with_listen_and_with_the_sweep_alone(
    pgbouncer: PgBouncer, database_url: str, redis_url: str
) -> None:
    pooled = _pooled(pgbouncer, database_url)
    with psycopg.connect(pooled, autocommit=True, prepare_threshold=None) as conn:
        conn.execute(AUDIT_SQL)
    with stack(pooled, redis_url, **FAST) as s:
        s.start("work0", "work")
        s.start("work1", "work")
        # 1. LISTEN on its own direct connection; a sweep would come too late (120 s).
        listening = s.start(
            "dispatch-listen",
            "dispatch",
            DATABASE_LISTEN_URL=libpq_url(database_url),
            WORKER_INTERVAL_SECONDS="120",
        )
        _insert(pooled, "onion")
        counts = _wait_drained(pooled, 120)
        assert counts.get("pending", 0) + counts.get("processing", 0) == 0, s.logs()
        assert sum(counts.values()) == ROWS
        listening.stop()
        events = _events(listening)
        assert "listening=True" in events and "dispatch_notify_unavailable" not in events, listening.tail()

        # 2. No listen URL: LISTEN through the pooler never hears its own probe; the sweep drains.
        sweeping = s.start("dispatch-sweep", "dispatch")
        _insert(pooled, "garlic")
        counts = _wait_drained(pooled, 120)
        assert counts.get("pending", 0) + counts.get("processing", 0) == 0, s.logs()
        assert sum(counts.values()) == 2 * ROWS
        events = _events(sweeping)
        assert {"dispatch_listen_url_missing", "dispatch_notify_unavailable", "listening=False"} <= events
