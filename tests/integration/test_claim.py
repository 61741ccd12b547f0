"""The exactly-once core against a real Postgres: claims, leases, fencing, filters."""

from __future__ import annotations

import threading
from collections import Counter

import psycopg
import pytest
import sqlalchemy as sa

from core import queue
from core.db import libpq_url, transaction
from core.errors import DatabaseError
from core.resolution import Resolution


def _seed(engine: sa.Engine, n: int, **overrides: object) -> list[int]:
    rows = [{"raw_name": f"ingredient {i}", **overrides} for i in range(n)]
    with transaction(engine) as conn:
        return queue.insert_rows(conn, rows)


def _expire_leases(engine: sa.Engine, ids: list[int]) -> None:
    with transaction(engine) as conn:
        conn.execute(
            sa.text(
                "UPDATE ingredient_match_queue SET processing_lease_expires_at = now() - interval '1 second' "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )


def _status(engine: sa.Engine) -> dict[str, int]:
    with transaction(engine) as conn:
        return dict(
            conn.execute(sa.text("SELECT status, count(*) FROM ingredient_match_queue GROUP BY 1")).all()
        )  # type: ignore[arg-type]


def test_no_double_claim_under_16_concurrent_claimers(engine: sa.Engine, database_url: str) -> None:
    _seed(engine, 5000)
    claimed: list[list[int]] = [[] for _ in range(16)]
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def claimer(slot: int) -> None:
        try:
            # A raw connection per thread: 16 real concurrent sessions.
            with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
                start.wait()
                while True:
                    rows = conn.execute(
                        "SELECT id FROM claim_ingredient_match_queue(50, %s, 60, 'any', 'any')",
                        (f"claimer-{slot}",),
                    ).fetchall()
                    if not rows:
                        return
                    claimed[slot].extend(r[0] for r in rows)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    everything = [i for ids in claimed for i in ids]
    counts = Counter(everything)
    assert len(everything) == 5000
    assert set(counts.values()) == {1}, "a row was claimed twice"
    assert sum(1 for ids in claimed if ids) > 1, "claims were not actually concurrent"
    assert _status(engine) == {"processing": 5000}
    with transaction(engine) as conn:
        attempts = conn.execute(sa.text("SELECT DISTINCT attempt_count FROM ingredient_match_queue")).all()
    assert attempts == [(1,)]


def test_expired_lease_is_claimable_again_with_next_attempt(engine: sa.Engine) -> None:
    ids = _seed(engine, 3)
    with transaction(engine) as conn:
        first = queue.claim_rows(conn, limit=10, resolver="a", lease_seconds=60)
    assert [r.attempt for r in first] == [1, 1, 1]
    with transaction(engine) as conn:  # leases still live: nothing to claim
        assert queue.claim_rows(conn, limit=10, resolver="b", lease_seconds=60) == []
    _expire_leases(engine, ids[:2])
    with transaction(engine) as conn:
        second = queue.claim_rows(conn, limit=10, resolver="b", lease_seconds=60)
    assert sorted(r.id for r in second) == ids[:2]
    assert {r.attempt for r in second} == {2}


def test_requeue_expired_returns_rows_to_pending_then_fails_them(engine: sa.Engine) -> None:
    ids = _seed(engine, 4)
    max_attempts = 2
    with transaction(engine) as conn:
        queue.claim_rows(conn, limit=10, resolver="a", lease_seconds=60)
    _expire_leases(engine, ids[:3])
    with transaction(engine) as conn:
        moved = queue.requeue_expired(conn, limit=100, error="lease expired", max_attempts=max_attempts)
    assert moved == 3
    assert _status(engine) == {"pending": 3, "processing": 1}
    # Second attempt, expired again: attempts reach the maximum, so the rows fail.
    with transaction(engine) as conn:
        again = queue.claim_rows(conn, limit=10, resolver="a", lease_seconds=60, max_attempts=max_attempts)
    assert {r.attempt for r in again} == {2}
    _expire_leases(engine, [r.id for r in again])
    with transaction(engine) as conn:
        moved = queue.requeue_expired(conn, limit=100, error="worker vanished", max_attempts=max_attempts)
    assert moved == 3
    with transaction(engine) as conn:
        failed = conn.execute(
            sa.text(
                "SELECT id, last_error, processing_lease_expires_at FROM ingredient_match_queue "
                "WHERE status = 'failed'"
            )
        ).all()
    assert sorted(r[0] for r in failed) == ids[:3]
    assert {r[1] for r in failed} == {"worker vanished"}
    assert {r[2] for r in failed} == {None}


def test_requeue_uses_the_sql_default_when_called_as_the_old_rpc(
    engine: sa.Engine, database_url: str
) -> None:
    ids = _seed(engine, 1)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for expected in ("pending", "pending", "failed"):  # default maximum: 3 attempts
            conn.execute("SELECT * FROM claim_ingredient_match_queue(10, 'rpc', 60, 'any', 'any')")
            _expire_leases(engine, ids)
            n = conn.execute("SELECT requeue_expired_ingredient_match_queue(10, 'expired')").fetchone()
            assert n == (1,)
            status = conn.execute("SELECT status FROM ingredient_match_queue").fetchone()
            assert status == (expected,)


def test_stale_completion_is_fenced_off(engine: sa.Engine) -> None:
    (row_id,) = _seed(engine, 1)
    with transaction(engine) as conn:
        (old,) = queue.claim_rows(conn, limit=1, resolver="slow-worker", lease_seconds=60)
    _expire_leases(engine, [row_id])
    with transaction(engine) as conn:
        (new,) = queue.claim_rows(conn, limit=1, resolver="fast-worker", lease_seconds=60)
    assert (old.attempt, new.attempt) == (1, 2)

    stale = Resolution("resolved", "stale", 1, "g", 0.5, "openai", None)
    fresh = Resolution("resolved", "flour", 2, "cup", 0.9, "local", None)
    # The stale claim finishes first while the new one still holds the row: nothing written.
    with transaction(engine) as conn:
        assert queue.complete_rows(conn, [(old, stale)]) == set()
        assert queue.fail_rows(conn, [(old, "boom")], max_attempts=3) == {}
        assert queue.reject_rows(conn, [(old, "junk", "rules")]) == set()
    with transaction(engine) as conn:
        assert queue.complete_rows(conn, [(new, fresh)]) == {row_id}
    # ... and after the new claim resolved it, the stale one still changes nothing.
    with transaction(engine) as conn:
        assert queue.complete_rows(conn, [(old, stale)]) == set()
        row = (
            conn.execute(sa.text("SELECT * FROM ingredient_match_queue WHERE id = :id"), {"id": row_id})
            .mappings()
            .one()
        )
    assert row["status"] == "resolved"
    assert (row["canonical_name"], row["resolved_unit"], float(row["resolved_quantity"])) == (
        "flour",
        "cup",
        2.0,
    )
    assert row["provider"] == "local"
    assert row["resolved_at"] is not None
    assert row["attempt_count"] == 2


def test_fail_and_reject_are_fenced_and_terminal(engine: sa.Engine) -> None:
    a, b = _seed(engine, 2)
    with transaction(engine) as conn:
        ra, rb = queue.claim_rows(conn, limit=2, resolver="w", lease_seconds=60)
        assert queue.fail_rows(conn, [(ra, "timeout")], max_attempts=3) == {a: "pending"}
        assert queue.reject_rows(conn, [(rb, "not a food: batteries", "rules")]) == {b}
    with transaction(engine) as conn:
        rows = {r.id: r for r in conn.execute(sa.text("SELECT * FROM ingredient_match_queue")).all()}
        # rejected rows are never claimed again
        again = queue.claim_rows(conn, limit=10, resolver="w", lease_seconds=60)
    assert rows[a].status == "pending" and rows[a].last_error == "timeout"
    assert rows[b].status == "rejected" and rows[b].last_error == "not a food: batteries"
    assert [r.id for r in again] == [a]


def test_release_hands_rows_back_without_waiting_for_the_lease(engine: sa.Engine) -> None:
    ids = _seed(engine, 2)
    with transaction(engine) as conn:
        rows = queue.claim_rows(conn, limit=2, resolver="w", lease_seconds=600)
        assert queue.release_rows(conn, rows, reason="shutdown") == set(ids)
    with transaction(engine) as conn:
        again = queue.claim_rows(conn, limit=2, resolver="w2", lease_seconds=600)
    assert sorted(r.id for r in again) == ids
    assert {r.attempt for r in again} == {2}


def test_review_mode_and_source_filters(engine: sa.Engine) -> None:
    combos = {}
    for source in ("scraper", "recipe"):
        for ing in (True, False):
            for unit in (True, False):
                combos[(source, ing, unit)] = _seed(
                    engine, 3, source=source, needs_ingredient_review=ing, needs_unit_review=unit
                )

    def expected(review: str, source: str) -> set[int]:
        out: set[int] = set()
        for (src, ing, unit), ids in combos.items():
            if source != "any" and src != source:
                continue
            if review == "ingredient" and not ing:
                continue
            if review == "unit" and not unit:
                continue
            out |= set(ids)
        return out

    for review in ("ingredient", "unit", "any"):
        for source in ("scraper", "recipe", "any"):
            with engine.connect() as conn:  # rolled back: each combination sees the same queue
                got = {
                    r.id
                    for r in queue.claim_rows(
                        conn, limit=1000, resolver="f", lease_seconds=60, review_mode=review, source=source
                    )
                }
                conn.rollback()
            assert got == expected(review, source), (review, source)


def test_claim_takes_oldest_first(engine: sa.Engine) -> None:
    ids = _seed(engine, 10)
    with transaction(engine) as conn:
        conn.execute(
            sa.text("UPDATE ingredient_match_queue SET created_at = now() - make_interval(secs => id)")
        )
        rows = queue.claim_rows(conn, limit=3, resolver="w", lease_seconds=60)
    assert [r.id for r in rows] == sorted(ids, reverse=True)[:3]


def test_bad_filter_values_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(DatabaseError, match="p_source"), transaction(engine) as conn:
        queue.claim_rows(conn, limit=1, resolver="w", lease_seconds=60, source="mars")
