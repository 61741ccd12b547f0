"""The chunk runner and dispatch cycle in-process, on real Postgres (and Redis for the fleet):
dedupe, cache, fences, release on stop, chain errors, dry run, queue_runs, capacity, job ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import redis
import sqlalchemy as sa
from rq import Queue, SimpleWorker

from core import queue
from core.db import transaction
from core.settings import Settings
from model.ingredients import IngredientAnswer, IngredientQuery
from model.rules import resolve_with_rules
from tests.pipeline_support import seed, snapshot, status_counts
from worker import tasks
from worker.cycle import CycleRunner
from worker.fleet import InlineFleet, RqFleet
from worker.payload import ChunkPayload
from worker.shadow import shadow_report
from worker.tasks import ChunkRunner

FOODS = ["onion", "garlic", "salt", "pepper", "butter", "sugar", "flour"]


class CountingResolver:
    """The real rules provider behind the resolver interface, counting what it is asked."""

    def __init__(self, fail: bool = False, model_id: str = "rules:test") -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.model_id = model_id

    def estimate_tokens(self, query: IngredientQuery) -> int:
        return 20 + len(query.text) // 4

    def resolve(self, queries: Sequence[IngredientQuery]) -> list[IngredientAnswer]:
        self.calls.append([q.text for q in queries])
        if self.fail:
            raise RuntimeError("provider chain exploded")
        return [resolve_with_rules(q.text, q.raw_unit) for q in queries]

    @property
    def asked(self) -> int:
        return sum(len(c) for c in self.calls)


def make_settings(database_url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": database_url,
        "queue_source": "any",
        "queue_review_mode": "any",
        "queue_lease_seconds": 60,
        "queue_max_attempts": 3,
        "llm_providers": "rules",
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def claim(engine: sa.Engine, limit: int = 100, lease: int = 60) -> list[queue.ClaimedRow]:
    with transaction(engine) as conn:
        return queue.claim_rows(conn, limit=limit, resolver="test", lease_seconds=lease)


@pytest.fixture(autouse=True)
def _clear_stop() -> Iterator[None]:
    tasks._stop_requested.clear()
    yield
    tasks._stop_requested.clear()


def test_repeats_are_asked_once_and_cache_serves_the_next_chunk(engine: sa.Engine, database_url: str) -> None:
    seed(engine, ["Salt", "salt", " SALT ", "2 cups flour", "salt", "pepper", "Pepper"])
    resolver = CountingResolver()
    runner = ChunkRunner(engine, make_settings(database_url), resolver)
    out = runner.run(ChunkPayload(claim(engine)))
    assert (out.resolved, out.distinct, out.model_queries, out.cache_hits) == (7, 3, 3, 0)
    assert resolver.asked == 3
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT canonical_name, provider, resolved_at FROM ingredient_match_queue")
        )
        assert all(r.canonical_name and r.provider == "rules" and r.resolved_at for r in rows)

    seed(engine, ["salt", "PEPPER", "2 cups flour"])
    out = runner.run(ChunkPayload(claim(engine)))
    assert (out.resolved, out.cache_hits, out.model_queries) == (3, 3, 0)
    assert resolver.asked == 3  # cache hits cost no model call
    assert status_counts(engine) == {"resolved": 10}


def test_fallback_answers_are_not_cached_under_the_models_key(engine: sa.Engine, database_url: str) -> None:
    # The local model is down: the chain's answers come from rules, under the local key.
    seed(engine, ["salt", "pepper"])
    resolver = CountingResolver(model_id="local:qwen3-8b-instruct")
    runner = ChunkRunner(engine, make_settings(database_url), resolver)
    assert runner.run(ChunkPayload(claim(engine))).resolved == 2
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ingredient_canonical_cache")).scalar() == 0
    seed(engine, ["salt"])
    out = runner.run(ChunkPayload(claim(engine)))
    assert (out.cache_hits, out.model_queries) == (0, 1)  # asked again once the model may be back


def test_lost_lease_drops_the_result(engine: sa.Engine, database_url: str) -> None:
    seed(engine, ["onion", "garlic"])
    stale = claim(engine, lease=1)
    with engine.begin() as conn:  # the lease runs out and another claim takes the rows
        conn.execute(
            sa.text("UPDATE ingredient_match_queue SET processing_lease_expires_at = now() - interval '1s'")
        )
    fresh = claim(engine)
    assert {r.attempt for r in fresh} == {2}
    resolver = CountingResolver()
    runner = ChunkRunner(engine, make_settings(database_url), resolver)
    out = runner.run(ChunkPayload(stale))
    assert out.lease_lost == 2 and out.resolved == 0 and resolver.asked == 0
    out = runner.run(ChunkPayload(fresh))
    assert out.resolved == 2
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT DISTINCT attempt_count FROM ingredient_match_queue")).scalar() == 2
        )


def test_stop_request_releases_rows_before_the_model(engine: sa.Engine, database_url: str) -> None:
    seed(engine, ["onion", "garlic", "leek"])
    rows = claim(engine)
    tasks.request_stop()
    resolver = CountingResolver()
    out = ChunkRunner(engine, make_settings(database_url), resolver).run(ChunkPayload(rows))
    assert out.released == 3 and resolver.asked == 0
    assert status_counts(engine) == {"pending": 3}


def test_chain_error_fails_rows_for_retry_without_raising(engine: sa.Engine, database_url: str) -> None:
    seed(engine, ["onion", "garlic"])
    out = ChunkRunner(engine, make_settings(database_url), CountingResolver(fail=True)).run(
        ChunkPayload(claim(engine))
    )
    assert out.failed == 2
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, last_error FROM ingredient_match_queue")).all()
    assert all(r.status == "pending" and "provider chain exploded" in r.last_error for r in rows)


def test_drain_cycles_and_queue_runs(engine: sa.Engine, database_url: str) -> None:
    seed(engine, [FOODS[i % 7] for i in range(30)] + ["", "<b>x</b>", "DROP TABLE users;"])
    settings = make_settings(database_url, queue_batch_limit=10, queue_chunk_max_items=3)
    resolver = CountingResolver()
    runner = CycleRunner(engine, settings, resolver, InlineFleet(ChunkRunner(engine, settings, resolver)))
    reports = []
    while not reports or reports[-1].claimed:
        reports.append(runner.run("drain"))
    assert [r.claimed for r in reports] == [10, 10, 10, 3, 0]
    assert sum(r.resolved + r.rejected for r in reports) == 33
    assert status_counts(engine) == {"resolved": 30, "rejected": 3}
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text("SELECT claimed, chunks, resolved, rejected FROM queue_runs ORDER BY id")
        ).all()
        reasons = conn.execute(
            sa.text("SELECT last_error FROM ingredient_match_queue WHERE status = 'rejected'")
        ).scalars()
        assert all(reasons)
    assert [r.claimed for r in runs] == [10, 10, 10, 3, 0]
    assert all(r.chunks >= 1 for r in runs[:4])


def test_dry_run_leaves_queue_rows_unchanged_and_shadow_report_compares(
    engine: sa.Engine, database_url: str
) -> None:
    seed(engine, ["onion", "2 tbsp olive oil", "onion", "not food: stapler", ""])
    seed(engine, ["garlic"], source="recipe")
    before = snapshot(engine)
    dry = make_settings(database_url, dry_run=True)
    resolver = CountingResolver()
    runner = CycleRunner(engine, dry, resolver, InlineFleet(ChunkRunner(engine, dry, resolver)))
    first = runner.run("drain")
    second = runner.run("drain")  # what was shadowed is not redone
    assert first.claimed == 6 and second.claimed == 0
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ingredient_match_shadow")).scalar() == 6

    live = make_settings(database_url)
    runner = CycleRunner(engine, live, resolver, InlineFleet(ChunkRunner(engine, live, resolver)))
    runner.run("drain")
    with transaction(engine) as conn:
        report = shadow_report(conn)
    assert report["compared"] == 6 and report["agreement_pct"] == 100.0


def test_rollout_stage_shadow_means_dry_run(database_url: str) -> None:
    s = Settings(database_url=database_url, rollout_stage="shadow")
    assert s.dry_run is True and s.queue_source == "any"


def test_rq_fleet_capacity_and_idempotent_enqueue(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    conn = redis.Redis.from_url(redis_url)
    settings = make_settings(
        database_url, redis_url=redis_url, queue_chunk_concurrency=2, queue_chunk_max_items=5
    )
    fleet = RqFleet(conn, settings)
    assert fleet.capacity().rows == 0  # no live worker: claim nothing
    worker = SimpleWorker([Queue("ingredients", connection=conn)], connection=conn)
    worker.register_birth()
    try:
        cap = fleet.capacity()
        assert (cap.live_workers, cap.rows) == (1, 10)
        seed(engine, ["onion", "garlic"])
        payload = ChunkPayload(claim(engine))
        fleet.submit(payload, "ingredients-abc")
        fleet.submit(payload, "ingredients-abc")  # the same claim again: one job
        assert fleet.queue.count == 1
        assert fleet.capacity().rows == 5
    finally:
        worker.register_death()
        conn.close()
