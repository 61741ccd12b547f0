"""The ingredient pipeline as it runs on a box: `sous sim`, `sous work` (RQ workers) and
`sous dispatch` as separate processes on real Postgres and Redis."""

from __future__ import annotations

import math
import random

import redis
import sqlalchemy as sa
from rq import Queue, Worker
from rq.registry import FailedJobRegistry

from devtools.procs import wait_until
from tests.pipeline_support import Stack, all_terminal, seed, snapshot, stack, status_counts

FOODS = [
    "onion", "garlic", "salt", "black pepper", "butter", "sugar", "flour", "olive oil", "egg", "milk",
    "carrot", "celery", "tomato", "basil", "parsley", "lemon", "lime", "honey", "rice", "chicken breast",
]  # fmt: skip
JUNK = [
    "", "   ", "x" * 10_000, "'; DROP TABLE ingredient_match_queue; --", "<script>alert(1)</script>",
    "🍕🍕🍕", "paper towels", "dish soap", "SELECT * FROM users WHERE 1=1",
]  # fmt: skip


def start_fleet(s: Stack, redis_url: str, n: int, *, dispatcher_last: bool = False) -> None:
    """n workers and a dispatcher. Started together by default (the dispatcher claims nothing
    until workers register: it sees no capacity); `dispatcher_last` waits for all n first."""
    for i in range(n):
        s.start(f"worker{i}", "work", "--queues", "ingredients")
    if not dispatcher_last:
        s.start("dispatch", "dispatch")
    conn = redis.Redis.from_url(redis_url)
    wait_until(lambda: Worker.count(connection=conn) >= n, 30, s.logs)
    conn.close()
    if dispatcher_last:
        s.start("dispatch", "dispatch")


def chunk_logs(s: Stack) -> list[dict[str, object]]:
    return [e for p in s.procs if p.name.startswith("worker") for e in p.events("chunk_done")]


def test_thousand_rows_with_repeats_all_terminal_and_repeats_cost_no_model_call(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    rng = random.Random(7)
    names = [f"{adj} {food}" for food in FOODS for adj in ("fresh", "organic", "chopped", "dried", "large")]
    rows = [rng.choice((n, n.upper(), f" {n} ")) for n in names for _ in range(10)]  # 100 names x 10
    rng.shuffle(rows)
    seed(engine, rows)
    # One claim takes the whole backlog, so every distinct name lands in exactly one chunk.
    with stack(
        database_url,
        redis_url,
        QUEUE_BATCH_LIMIT="1000",
        QUEUE_CHUNK_CONCURRENCY="20",
        QUEUE_CHUNK_MAX_ITEMS="25",
    ) as s:
        s.start_sim("instant")
        start_fleet(s, redis_url, 2, dispatcher_last=True)  # the whole fleet's capacity in one claim
        wait_until(lambda: all_terminal(engine, 1000), 90, s.logs)
        with engine.connect() as conn:
            bad = conn.execute(
                sa.text(
                    "SELECT count(*) FROM ingredient_match_queue WHERE status <> 'resolved' "
                    "OR canonical_name IS NULL OR provider IS NULL OR resolved_at IS NULL"
                )
            ).scalar()
        assert bad == 0
        chunks = chunk_logs(s)
        asked = sum(int(c["model_queries"]) for c in chunks)  # type: ignore[call-overload]
        assert asked == len(names)  # 1,000 rows, 100 distinct names: each asked once
        # At most one request per 20 distinct names of a chunk (fewer if the chain, finding the
        # simulator slow to answer its health check, answered some with the rules instead).
        most = sum(math.ceil(int(c["model_queries"]) / 20) for c in chunks)  # type: ignore[call-overload]
        assert 0 < s.sim_requests() <= most < 20

        # Repeats of names already answered: served from the canonical cache, no model call.
        before = s.sim_requests()
        seed(engine, [rng.choice(names) for _ in range(200)])
        wait_until(lambda: all_terminal(engine, 1200), 30, s.logs)
        assert status_counts(engine) == {"resolved": 1200}
        assert s.sim_requests() == before


def test_simulator_faults_fall_through_and_nothing_is_lost(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    ids = seed(engine, [f"{FOODS[i % 20]} {i}" for i in range(30)])
    with stack(database_url, redis_url, LOCAL_LLM_TIMEOUT_MS="500", QUEUE_CHUNK_MAX_ITEMS="10") as s:
        s.start_sim("instant")
        s.sim_faults(error_rate=0.34, timeout_rate=0.33, malformed_rate=0.33)  # every call breaks
        start_fleet(s, redis_url, 2)
        wait_until(lambda: all_terminal(engine, len(ids)), 60, s.logs)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT status, provider, last_error FROM ingredient_match_queue")
            ).all()
        assert len(rows) == 30
        assert all(r.status == "resolved" and r.provider == "rules" for r in rows)  # the next provider
        assert s.sim_requests() > 0  # the model was tried first
        assert all(p.alive() for p in s.procs)


def test_without_a_fallback_faults_end_failed_with_last_error(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    seed(engine, FOODS[:8])
    env = {"LLM_PROVIDERS": "local", "QUEUE_MAX_ATTEMPTS": "2", "LOCAL_LLM_TIMEOUT_MS": "500"}
    with stack(database_url, redis_url, **env) as s:
        s.start_sim("instant")
        s.sim_faults(error_rate=1.0)
        start_fleet(s, redis_url, 1)
        wait_until(lambda: all_terminal(engine, 8), 60, s.logs)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT status, attempt_count, last_error FROM ingredient_match_queue")
            ).all()
        assert all(r.status == "failed" and r.attempt_count == 2 and r.last_error for r in rows)


def test_junk_inputs_are_rejected_with_a_reason_and_no_worker_crashes(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    junk_ids = seed(engine, JUNK)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO ingredient_match_queue (raw_name, cleaned_name) VALUES (NULL, NULL)")
        )
    food_ids = seed(engine, FOODS[:5])
    total = len(junk_ids) + 1 + len(food_ids)
    with stack(database_url, redis_url) as s:
        s.start_sim("instant")
        start_fleet(s, redis_url, 2)
        wait_until(lambda: all_terminal(engine, total), 60, s.logs)
        with engine.connect() as conn:
            rows = {
                r.id: r
                for r in conn.execute(
                    sa.text("SELECT id, status, last_error FROM ingredient_match_queue")
                ).all()
            }
        for row_id, row in rows.items():
            if row_id in food_ids:
                assert row.status == "resolved"
            else:
                assert row.status == "rejected" and row.last_error, row
        assert all(p.alive() for p in s.procs)
        conn_r = redis.Redis.from_url(redis_url)
        assert FailedJobRegistry(queue=Queue("ingredients", connection=conn_r)).count == 0
        conn_r.close()


def test_dry_run_leaves_queue_rows_byte_for_byte_unchanged(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    seed(engine, [*FOODS[:10], "onion", "onion", "stapler"])
    with engine.begin() as conn:  # history a live box would touch: an expired lease, a resolved row
        conn.execute(
            sa.text(
                "UPDATE ingredient_match_queue SET status = 'processing', attempt_count = 1, "
                "processing_started_at = now() - interval '1 hour', "
                "processing_lease_expires_at = now() - interval '50 minutes' WHERE id = 1"
            )
        )
        conn.execute(
            sa.text(
                "UPDATE ingredient_match_queue SET status = 'resolved', canonical_name = 'garlic' "
                "WHERE id = 2"
            )
        )
    before = snapshot(engine)

    def shadowed() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM ingredient_match_shadow")).scalar() or 0)

    def runs() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM queue_runs")).scalar() or 0)

    with stack(database_url, redis_url, ROLLOUT_STAGE="shadow", WORKER_INTERVAL_SECONDS="1") as s:
        s.start_sim("instant")
        start_fleet(s, redis_url, 1)
        wait_until(lambda: shadowed() == 11, 60, s.logs)  # the 11 pending rows
        seen = runs()
        wait_until(lambda: runs() >= seen + 2, 30, s.logs)  # more sweeps: nothing redone
    assert shadowed() == 11
    assert snapshot(engine) == before
