from __future__ import annotations

import json

import psycopg

from core import migrate
from core.db import libpq_url

TABLES = {
    "ingredient_match_queue",
    "menu_extraction_jobs",
    "profiles",
    "menu_images",
    "extraction_uploads",
    "ingredient_canonical_cache",
    "ingredient_match_shadow",
    "queue_runs",
    "ops_audit_log",  # issue 15
    "sous_schema_changes",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchall()
    return {r[0] for r in rows}


def _functions(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_upgrade_on_an_empty_database(fresh_db: str) -> None:
    migrate.upgrade(fresh_db)
    assert _tables(fresh_db) == TABLES
    functions = _functions(fresh_db)
    assert "claim_ingredient_match_queue(integer,text,integer,text,text)" in functions
    assert "requeue_expired_ingredient_match_queue(integer,text)" in functions

    migrate.downgrade(fresh_db)
    assert _tables(fresh_db) == set()
    assert _functions(fresh_db) == set()
    with psycopg.connect(libpq_url(fresh_db)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_views WHERE schemaname = 'public'").fetchone() == (0,)

    migrate.upgrade(fresh_db)
    assert _tables(fresh_db) == TABLES


def test_insert_notifies_once_per_statement(database_url: str) -> None:
    url = libpq_url(database_url)
    with psycopg.connect(url, autocommit=True) as listener, psycopg.connect(url, autocommit=True) as writer:
        listener.execute("LISTEN ingredient_match_queue")
        writer.execute(
            "INSERT INTO ingredient_match_queue (raw_name) SELECT 'x' || g FROM generate_series(1, 500) g"
        )
        notes = list(listener.notifies(timeout=2, stop_after=2))
    assert [n.payload for n in notes] == ['{"count" : 500}']


def test_menu_job_triggers_notify_with_the_seed_payload(database_url: str) -> None:
    url = libpq_url(database_url)
    user = "6f1c3c1e-1111-4a4a-9b9b-123456789abc"
    with psycopg.connect(url, autocommit=True) as listener, psycopg.connect(url, autocommit=True) as writer:
        listener.execute("LISTEN menu_extraction_jobs")
        (job_id,) = writer.execute(
            "INSERT INTO menu_extraction_jobs (user_id, image_hash) VALUES (%s, %s) RETURNING id",
            (user, "a" * 64),
        ).fetchone()  # type: ignore[misc]
        writer.execute("UPDATE menu_extraction_jobs SET status = 'processing' WHERE id = %s", (job_id,))
        writer.execute(
            "UPDATE menu_extraction_jobs SET processing_time = 5 WHERE id = %s", (job_id,)
        )  # no status change
        writer.execute(
            "UPDATE menu_extraction_jobs SET status = 'completed', confidence = 0.75 WHERE id = %s", (job_id,)
        )
        payloads = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=3)]
    assert payloads == [
        {"id": str(job_id), "status": "queued", "user_id": user, "confidence": None},
        {"id": str(job_id), "status": "processing", "user_id": user, "confidence": None},
        {"id": str(job_id), "status": "completed", "user_id": user, "confidence": 0.75},
    ]


def test_identical_live_menu_jobs_collapse(database_url: str) -> None:
    user = "6f1c3c1e-1111-4a4a-9b9b-123456789abc"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        sql = (
            "INSERT INTO menu_extraction_jobs (user_id, image_hash) VALUES (%s, %s) "
            "ON CONFLICT (user_id, image_hash, schema_version, prompt_version) "
            "WHERE status IN ('queued', 'processing') DO NOTHING RETURNING id"
        )
        assert conn.execute(sql, (user, "b" * 64)).fetchone() is not None
        assert conn.execute(sql, (user, "b" * 64)).fetchone() is None


def test_existing_ocr_jobs_table_is_renamed_with_its_rows(fresh_db: str) -> None:
    url = libpq_url(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        # The old app's table, as it stood before sous.
        conn.execute(
            """
            CREATE TABLE ocr_jobs (
              id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
              user_id uuid NOT NULL,
              image_url text,
              image_hash text,
              status text NOT NULL DEFAULT 'queued',
              schema_version text NOT NULL DEFAULT 'v1',
              prompt_version text NOT NULL DEFAULT 'v1',
              result jsonb,
              error_message text,
              processing_time integer,
              retry_count integer NOT NULL DEFAULT 0,
              token_usage jsonb,
              confidence real,
              uncertain_items jsonb,
              superfluous_text jsonb,
              created_at timestamptz NOT NULL DEFAULT now(),
              completed_at timestamptz
            )
            """
        )
        conn.execute(
            "INSERT INTO ocr_jobs (user_id, image_hash, status, result) "
            "SELECT gen_random_uuid(), md5(g::text) || md5(g::text), 'completed', '{\"menu\": {}}' "
            "FROM generate_series(1, 25) g"
        )
    migrate.upgrade(fresh_db)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM menu_extraction_jobs").fetchone() == (25,)
        assert conn.execute("SELECT count(*) FROM ocr_jobs WHERE status = 'completed'").fetchone() == (25,)
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'ocr_jobs'").fetchone()
        assert kind == ("v",)
        # New columns exist with their defaults on the old rows.
        assert conn.execute(
            "SELECT DISTINCT attempt_count, retry_of FROM menu_extraction_jobs"
        ).fetchall() == [(0, None)]
        # New jobs are visible through the old name too.
        conn.execute("INSERT INTO menu_extraction_jobs (user_id, image_hash) VALUES (gen_random_uuid(), 'h')")
        assert conn.execute("SELECT count(*) FROM ocr_jobs").fetchone() == (26,)
        conn.rollback()

    migrate.downgrade(fresh_db)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'ocr_jobs'").fetchone() == ("r",)
        assert conn.execute("SELECT count(*) FROM ocr_jobs").fetchone() == (25,)
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'ocr_jobs'"
            ).fetchall()
        }
        assert "attempt_count" not in columns and "retry_of" not in columns
    migrate.upgrade(fresh_db)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM ocr_jobs").fetchone() == (25,)
