"""`sous migrate` on a database shaped like the app's Supabase project (tests/supabase_shape.py):
adopted in place, idempotent, closed to the API roles, and given back exactly by the downgrade;
an incompatible table is refused with one line per problem and nothing changes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors

from core import menu_jobs, migrate, queue
from core.adoption import apply
from core.db import create_engine, libpq_url
from core.errors import InvalidInput
from core.fetch import ImageData
from core.resolution import Resolution
from tests import supabase_shape as shape
from tests.integration.test_pipeline_chunks import CountingResolver, make_settings
from worker.cycle import CycleRunner
from worker.fleet import InlineFleet
from worker.shadow import shadow_report
from worker.tasks import ChunkRunner

INTERNAL = (
    "ingredient_canonical_cache",
    "ingredient_match_shadow",
    "queue_runs",
    "extraction_uploads",
    "menu_images",
    "sous_schema_changes",
    "sous_user_plans",
    "alembic_version",
)
CLAIM = "SELECT * FROM claim_ingredient_match_queue(1, 'x', 60, 'any', 'any')"


def sous(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "INFO"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _as(conn: psycopg.Connection, role: str, sql: str, sub: str | None = None) -> list[tuple[object, ...]]:
    """Runs sql as `role` (with a JWT subject), in a transaction that is rolled back."""
    with conn.transaction(force_rollback=True):
        if sub:
            conn.execute("SELECT set_config('request.jwt.claim.sub', %s, true)", (sub,))
        conn.execute(f"SET LOCAL ROLE {role}")
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("name", ["uuid", "bigint"])
def test_supabase_shape_is_adopted_in_place_and_given_back(fresh_db: str, name: str) -> None:
    kind = shape.SHAPES[name]
    shape.build(fresh_db, kind)
    before = shape.schema_dump(fresh_db)
    tables = {"ingredient_match_queue": "ingredient_match_queue", "ocr_jobs": "menu_extraction_jobs"}
    tables["profiles"] = "profiles"
    cols = {t: shape.columns(fresh_db, t) for t in tables}
    data = {t: shape.rows(fresh_db, t, [c for c, _ in cols[t]]) for t in tables}

    planned = sous(fresh_db, "--plan")
    assert planned.returncode == 0, planned.stderr
    assert "rename   rename table ocr_jobs -> menu_extraction_jobs" in planned.stdout
    assert "add column ingredient_match_queue.attempt_count integer NOT NULL DEFAULT 0" in planned.stdout
    assert "replace function claim_ingredient_match_queue" in planned.stdout
    assert shape.schema_dump(fresh_db) == before  # --plan changes nothing

    migrate.upgrade(fresh_db)
    after = shape.schema_dump(fresh_db)
    migrate.upgrade(fresh_db)
    engine = create_engine(fresh_db, pool_size=1)
    try:
        with engine.begin() as conn:  # the planner itself, past alembic's version check
            assert apply.upgrade(conn, "again").steps == []
    finally:
        engine.dispose()
    assert shape.schema_dump(fresh_db) == after

    # Every pre-existing column keeps its type, every row its values.
    for old, new in tables.items():
        assert shape.columns(fresh_db, new)[: len(cols[old])] == cols[old]
        assert shape.rows(fresh_db, new, [c for c, _ in cols[old]]) == data[old]

    url = libpq_url(fresh_db)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'ocr_jobs'").fetchone() == ("v",)
        policies = {
            r[0]
            for r in conn.execute(
                "SELECT policyname FROM pg_policies WHERE tablename = 'menu_extraction_jobs'"
            )
        }
        assert policies == {
            "Users can view their own OCR jobs",
            "Users can create their own OCR jobs",
            "sous_menu_jobs_read_own",
        }
        published = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
            )
        }
        assert "menu_extraction_jobs" in published
        fk = conn.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint "
            "WHERE conrelid = 'menu_extraction_jobs'::regclass AND contype = 'f'"
        ).fetchall()
        assert fk == [("auth.users",)]
        for role in ("anon", "authenticated"):
            for sql in [CLAIM, "SELECT requeue_expired_ingredient_match_queue(1, 'x')"] + [
                f"SELECT * FROM {t}" for t in INTERNAL
            ]:
                with pytest.raises(errors.InsufficientPrivilege):
                    _as(conn, role, sql)
        assert _as(conn, "service_role", CLAIM) is not None
        mine = _as(
            conn, "authenticated", "SELECT DISTINCT user_id::text FROM menu_extraction_jobs", shape.USER_A
        )
        assert mine == [(shape.USER_A,)]
        assert len(_as(conn, "authenticated", "SELECT * FROM menu_extraction_jobs", shape.USER_A)) == 4
        assert _as(conn, "anon", "SELECT * FROM menu_extraction_jobs") == []
        # The old app's readers, through the view, see their own rows only too.
        assert len(_as(conn, "authenticated", "SELECT * FROM ocr_jobs", shape.USER_B)) == 4
    # Plans and the app's plan_limits keys come from whichever column keys profiles.
    engine = create_engine(fresh_db, pool_size=1)
    try:
        state = menu_jobs.get_quota(engine, uuid.UUID(shape.USER_A))
    finally:
        engine.dispose()
    if kind.profiles_key == "id":  # plan_limits {"ocr_jobs": 7, "monthly_uploads": 9}
        assert (state.limits.plan, state.limits.monthly, state.limits.monthly_uploads) == ("premium", 7, 9)
        assert state.as_json()["monthlyUploads"] == {"limit": 9, "used": 0, "remaining": 9}
    else:  # keyed by user_id, no plan_limits column before sous: added with its default
        assert (state.limits.plan, state.limits.monthly, state.limits.monthly_uploads) == (
            "enterprise",
            None,
            None,
        )
    assert state.monthly_used == 4  # the old ocr_jobs rows of this month count
    engine = create_engine(fresh_db, pool_size=1)
    try:  # a submission lands in the adopted table, through sous's own path
        image = ImageData(b"\x89PNG fake menu", "image/png", None)
        sub = menu_jobs.submit(engine, uuid.UUID(shape.USER_A), image)
        assert sub.created and sub.job["status"] == "queued" and sub.job["restaurant_name"] is None
    finally:
        engine.dispose()
    with psycopg.connect(url) as conn:  # the JSON claims form of the JWT works too
        with conn.transaction(force_rollback=True):
            conn.execute(
                "SELECT set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{shape.USER_B}"}}',)
            )
            conn.execute("SET LOCAL ROLE authenticated")
            seen = conn.execute("SELECT DISTINCT user_id::text FROM menu_extraction_jobs").fetchall()
        assert seen == [(shape.USER_B,)]

    migrate.downgrade(fresh_db)
    assert shape.schema_dump(fresh_db) == before
    for old in tables:  # every old row as it was (the job submitted above stays too)
        assert set(data[old]) <= set(shape.rows(fresh_db, old, [c for c, _ in cols[old]]))


def test_claims_work_with_uuid_ids(fresh_db: str) -> None:
    """The queue operations of core/queue.py on uuid ids and text recipe ids."""
    shape.build(fresh_db, shape.SHAPES["uuid"])
    migrate.upgrade(fresh_db)
    engine = create_engine(fresh_db, pool_size=1)
    try:
        with engine.begin() as conn:
            ids = queue.insert_rows(conn, [{"raw_name": "1 cup milk", "recipe_ingredient_id": "r-7"}])
            assert isinstance(ids[0], str) and len(ids[0]) == 36
            claimed = queue.claim_rows(conn, limit=100, resolver="t", lease_seconds=60)
            assert {r.id for r in claimed} >= set(ids)
            res = Resolution("resolved", "milk", 1, "cup", 0.9, "rules", None)
            assert queue.complete_rows(conn, [(r, res) for r in claimed]) == {r.id for r in claimed}
            row = queue.get_row(conn, str(ids[0]))
            assert row is not None and row["status"] == "resolved" and row["recipe_ingredient_id"] == "r-7"
            assert queue.get_row(conn, "12345") is None  # not a uuid: not found, not an error
            assert (
                conn.execute(
                    sa.text("SELECT count(*) FROM ingredient_match_queue WHERE status = 'pending'")
                ).scalar()
                == 0
            )
    finally:
        engine.dispose()


def test_an_incompatible_table_is_refused_and_nothing_changes(fresh_db: str) -> None:
    url = libpq_url(fresh_db)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE ingredient_match_queue (id bigint PRIMARY KEY, raw_name text, status text, "
            "attempt_count text, confidence jsonb)"
        )
        conn.execute(
            "INSERT INTO ingredient_match_queue VALUES "
            "(1, 'x', 'pending', '0', NULL), (2, 'y', 'done', '1', NULL)"
        )
        conn.execute("CREATE TABLE ocr_jobs (id uuid PRIMARY KEY, user_id uuid, status text)")
    before = shape.schema_dump(fresh_db)
    result = sous(fresh_db)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("sous migrate: cannot adopt")]
    prefix = "sous migrate: cannot adopt ingredient_match_queue."
    assert lines == [
        prefix + "attempt_count: is text; needed: one of bigint, integer, smallint",
        prefix
        + "confidence: is jsonb; needed: one of bigint, double precision, integer, numeric, real, smallint",
        prefix
        + "status: holds 'done' in 1 rows; needed: one of pending, processing, resolved, failed, rejected",
    ]
    assert shape.schema_dump(fresh_db) == before
    assert sous(fresh_db, "--plan").returncode == 2


def test_shadow_report_compares_with_the_nightly_jobs_columns(fresh_db: str) -> None:
    """Dry-run answers for the legacy pending rows; the nightly job then resolves them into its
    own columns (matched_name, matched_unit); the report compares per field."""
    shape.build(fresh_db, shape.SHAPES["uuid"])
    migrate.upgrade(fresh_db)
    engine = create_engine(fresh_db, pool_size=2)
    try:
        dry = make_settings(fresh_db, dry_run=True)
        resolver = CountingResolver()
        assert (
            CycleRunner(engine, dry, resolver, InlineFleet(ChunkRunner(engine, dry, resolver)))
            .run("drain")
            .claimed
            == 15
        )
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE ingredient_match_queue SET status = 'resolved', "
                    "matched_name = CASE WHEN cleaned_name = 'flour' THEN 'wheat flour' "
                    "ELSE cleaned_name END "
                    "WHERE status = 'pending'"
                )
            )
            report = shadow_report(conn, columns="canonical_name=matched_name,resolved_unit=matched_unit")
    finally:
        engine.dispose()
    flour = sum(1 for d in report["disagreements"] if d["name"] == "flour")
    assert report["compared"] == 15 and flour == 5 == report["disagreements_total"]
    assert report["fields"]["canonical_name"] == {"compared": 15, "agree": 10, "agreement_pct": 66.67}
    assert report["fields"]["resolved_unit"]["compared"] == 0  # neither side has a unit for a bare name
    sample = report["disagreements"][0]["fields"]
    assert sample == {"canonical_name": {"sous": "flour", "app": "wheat flour", "column": "matched_name"}}


def test_a_plain_postgres_shape_is_adopted_and_given_back(fresh_db: str) -> None:
    """No Supabase; serial ids, varchar status without CHECK, NULL attempts and review flags,
    an existing menu_extraction_jobs, profiles with an enum plan and json plan_limits."""
    shape.build_plain(fresh_db)
    before = shape.schema_dump(fresh_db)
    queue_cols = [c for c, _ in shape.columns(fresh_db, "ingredient_match_queue")]
    data = shape.rows(fresh_db, "ingredient_match_queue", queue_cols)
    migrate.upgrade(fresh_db)
    after = shape.schema_dump(fresh_db)
    assert "sous_menu_jobs_read_own" not in after and "ingredient_match_queue_sous_status_check" in after
    engine = create_engine(fresh_db, pool_size=1)
    try:
        with engine.begin() as conn:
            assert apply.upgrade(conn, "again").steps == []
            ids = queue.insert_rows(conn, [{"raw_name": "2 eggs", "recipe_ingredient_id": str(uuid.uuid4())}])
            assert isinstance(ids[0], int)
            claimed = queue.claim_rows(
                conn, limit=100, resolver="t", lease_seconds=60, review_mode="ingredient"
            )
            assert len(claimed) == 11 and all(r.attempt == 1 for r in claimed)  # 10 old pending + 1
            res = Resolution("resolved", "salt", 1, "tsp", 0.9, "rules", None)
            assert queue.complete_rows(conn, [(r, res) for r in claimed]) == {r.id for r in claimed}
        state = menu_jobs.get_quota(engine, uuid.UUID(shape.USER_A))
        assert (state.limits.plan, state.limits.monthly, state.monthly_used) == ("premium", 3, 2)
        with pytest.raises(InvalidInput), engine.begin() as conn:  # a uuid column, not a uuid
            queue.insert_rows(conn, [{"raw_name": "2 eggs", "recipe_ingredient_id": "r-7"}])
    finally:
        engine.dispose()
    assert shape.schema_dump(fresh_db) == after
    migrate.downgrade(fresh_db)
    assert shape.schema_dump(fresh_db) == before
    rows_after = shape.rows(fresh_db, "ingredient_match_queue", queue_cols)
    finished = [r for r in data if ",pending," not in r]
    assert len(finished) == 20 and set(finished) <= set(rows_after) and len(rows_after) == 31
