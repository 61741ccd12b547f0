"""The pipeline on the app's adopted database (uuid ids, the nightly job's columns): the real
dispatcher and workers drain the legacy pending rows while a stand-in nightly process calls the
same claim RPC on its own connection; no row is claimed twice, rows the nightly job already
finished are never touched, and a row inserted the scraper's way wakes the dispatcher."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import sqlalchemy as sa

from core import migrate
from core.db import create_engine, libpq_url
from tests import supabase_shape as shape
from tests.pipeline_support import stack

CLAIM_AUDIT = """
CREATE TABLE test_claims (queue_id text NOT NULL, resolver text, attempt integer);
CREATE FUNCTION test_audit_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'processing' AND NEW.attempt_count IS DISTINCT FROM OLD.attempt_count THEN
    INSERT INTO test_claims VALUES (NEW.id::text, NEW.resolver, NEW.attempt_count);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_audit_claim AFTER UPDATE ON ingredient_match_queue
  FOR EACH ROW EXECUTE FUNCTION test_audit_claim();
"""

# The nightly job during rollout: the same RPC, its own answer columns, fenced on the attempt.
NIGHTLY = """
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
deadline, idle, done = time.monotonic() + float(sys.argv[2]), 0, 0
while time.monotonic() < deadline and idle < 40:
    rows = conn.execute(
        "SELECT id, attempt_count, cleaned_name "
        "FROM claim_ingredient_match_queue(3, 'nightly', 300, 'any', 'any')"
    ).fetchall()
    for row_id, attempt, name in rows:
        conn.execute(
            "UPDATE ingredient_match_queue SET status = 'resolved', matched_name = %s, canonical_name = %s, "
            "resolved_at = now() WHERE id = %s AND status = 'processing' AND attempt_count = %s",
            (name, name, row_id, attempt),
        )
        time.sleep(0.01)
    done += len(rows)
    idle = 0 if rows else idle + 1
    time.sleep(0.02 if rows else 0.05)
print(done)
"""


def _scalar(url: str, sql: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def test_fleet_and_nightly_drain_the_adopted_queue(fresh_db: str, redis_url: str) -> None:
    shape.build(fresh_db, shape.SHAPES["uuid"])
    migrate.upgrade(fresh_db)
    url = libpq_url(fresh_db)
    finished = "SELECT id, q::text FROM ingredient_match_queue q WHERE status <> 'pending' ORDER BY id"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CLAIM_AUDIT)
        untouched_before = conn.execute(finished).fetchall()
        legacy_pending = [
            r[0] for r in conn.execute("SELECT id FROM ingredient_match_queue WHERE status = 'pending'")
        ]
    assert len(legacy_pending) == 15

    # Sweep rarely: a row that is resolved within seconds was woken by its NOTIFY.
    with stack(fresh_db, redis_url, WORKER_INTERVAL_SECONDS="120", LLM_PROVIDERS="rules") as s:
        s.start("dispatch", "dispatch")
        for i in range(2):
            s.start(f"work{i}", "work")
        nightly = subprocess.Popen(
            [sys.executable, "-c", NIGHTLY, url, "60"], stdout=subprocess.PIPE, text=True
        )
        with psycopg.connect(url, autocommit=True) as conn:
            for batch in range(6):  # the scraper's plain inserts, a few statements
                conn.execute(
                    "INSERT INTO ingredient_match_queue (raw_name, cleaned_name) "
                    "SELECT '1 cup ' || w || ' ' || g, w || ' ' || g FROM generate_series(1, 50) g, "
                    "(VALUES (%s)) v(w)",
                    (f"chopped carrot{batch}",),
                )
        out, _ = nightly.communicate(timeout=90)
        deadline = time.monotonic() + 60
        live = (
            "SELECT count(*) FROM ingredient_match_queue "
            "WHERE status = 'pending' OR (status = 'processing' AND resolver <> 'nightly')"
        )
        while _scalar(url, live) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _scalar(url, live) == 0, s.logs()

        # One more row the scraper's way: the dispatcher wakes on its NOTIFY, long before a sweep.
        with psycopg.connect(url, autocommit=True) as conn:
            (late,) = conn.execute(
                "INSERT INTO ingredient_match_queue (raw_name, cleaned_name) "
                "VALUES ('2 cups whole milk', 'whole milk') RETURNING id"
            ).fetchone()  # type: ignore[misc]
        start = time.monotonic()
        while time.monotonic() - start < 20:
            status = _scalar(url, f"SELECT status FROM ingredient_match_queue WHERE id = '{late}'")
            if status == "resolved":
                break
            time.sleep(0.1)
        assert status == "resolved", s.logs()
        assert time.monotonic() - start < 15

    with psycopg.connect(url) as conn:
        claims = conn.execute(
            "SELECT queue_id, count(*) FROM test_claims GROUP BY 1 HAVING count(*) > 1"
        ).fetchall()
        assert claims == []  # no row was claimed twice
        by = dict(
            conn.execute("SELECT resolver LIKE 'sous:%%', count(*) FROM test_claims GROUP BY 1").fetchall()
        )
        assert by.get(True, 0) > 0 and by.get(False, 0) > 0 and int(out.strip()) == by[False]
        # The legacy rows were drained; the rows the nightly job had finished are exactly as they were.
        states = dict(
            conn.execute(
                "SELECT status, count(*) FROM ingredient_match_queue WHERE id = ANY(%s) GROUP BY 1",
                (legacy_pending,),
            ).fetchall()
        )
        assert set(states) <= {"resolved", "rejected"} and sum(states.values()) == 15
        untouched_ids = [r[0] for r in untouched_before]
        after = conn.execute(
            "SELECT id, q::text FROM ingredient_match_queue q WHERE id = ANY(%s) ORDER BY id",
            (untouched_ids,),
        ).fetchall()
        assert after == untouched_before
        assert conn.execute(
            "SELECT count(*) FROM ingredient_match_queue WHERE status = 'pending'"
        ).fetchone() == (0,)
    engine = create_engine(fresh_db, pool_size=1)
    try:
        with engine.connect() as conn:
            sous_rows = conn.execute(
                sa.text("SELECT count(*) FROM ingredient_match_queue WHERE provider IS NOT NULL")
            )
            assert (sous_rows.scalar() or 0) > 0
    finally:
        engine.dispose()
