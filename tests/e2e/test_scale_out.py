"""Two complete boxes on one Postgres: each its own Redis, simulator, RQ workers and dispatcher
(different BOX_IDs). 5,000 rows are each resolved exactly once and both boxes do work; one box
is SIGKILLed mid-run and the other finishes everything once the dead box's leases expire."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from rq import Worker

from devtools.procs import wait_until
from devtools.services import RedisServer
from model.rules import resolve_with_rules
from model.vocabulary import CANONICAL
from tests.pipeline_support import Stack, base_env, install_audit, seed, status_counts

ROWS = 5000
WORKERS_PER_BOX = 3
MODIFIERS = ["", "fresh ", "chopped ", "organic ", "diced "]
BOX_ENV = {
    "QUEUE_LEASE_SECONDS": "5",
    "WORKER_INTERVAL_SECONDS": "1",
    "QUEUE_BATCH_LIMIT": "200",
    "QUEUE_CHUNK_MAX_ITEMS": "20",
    "LOG_LEVEL": "INFO",  # the appliance default; issue 13
}


@pytest.fixture
def second_redis() -> Iterator[str]:
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


def start_box(database_url: str, redis_url: str, box_id: str) -> Stack:
    box = Stack(base_env(database_url, redis_url, BOX_ID=box_id, **BOX_ENV))
    box.start_sim("instant")
    for i in range(WORKERS_PER_BOX):
        box.start(f"worker{i}", "work", "--queues", "ingredients")
    box.start("dispatch", "dispatch")
    return box


def wait_workers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: Worker.count(connection=client) >= WORKERS_PER_BOX, 60)
    finally:
        client.close()


def resolved_by(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT resolver, count(*) FROM ingredient_match_queue WHERE status = 'resolved' GROUP BY 1"
            )
        ).all()
    return {str(r[0]): int(r[1]) for r in rows}


def test_two_boxes_share_one_queue_and_a_dead_box_leaves_its_rows_to_the_other(
    engine: sa.Engine, database_url: str, redis_url: str, second_redis: str
) -> None:
    install_audit(engine)
    # Food names the simulator (rules-backed) resolves, each repeated a few times.
    foods = [m + f for f in sorted(CANONICAL) for m in MODIFIERS]
    foods = [n for n in foods if resolve_with_rules(n, None).status == "resolved"]
    names = [foods[(i * 7) % len(foods)] for i in range(ROWS)]
    boxes: list[Stack] = []
    try:
        box_a = start_box(database_url, redis_url, "box-a")
        boxes.append(box_a)
        box_b = start_box(database_url, second_redis, "box-b")
        boxes.append(box_b)
        for url in (redis_url, second_redis):
            wait_workers(url)
        seed(engine, names)

        def a_is_mid_chunk() -> bool:
            done = resolved_by(engine)
            with engine.connect() as conn:
                held = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM ingredient_match_queue "
                        "WHERE status = 'processing' AND resolver = 'sous:box-a'"
                    )
                ).scalar_one()
            return done.get("sous:box-a", 0) > 300 and done.get("sous:box-b", 0) > 300 and held > 0

        wait_until(a_is_mid_chunk, 60, lambda: box_a.logs() + box_b.logs())
        for proc in box_a.procs:  # the whole box dies at once: power cut
            proc.signal(signal.SIGKILL)
        with engine.connect() as conn:
            orphaned = set(
                conn.execute(
                    sa.text(
                        "SELECT id FROM ingredient_match_queue "
                        "WHERE status = 'processing' AND resolver = 'sous:box-a'"
                    )
                ).scalars()
            )
        before_kill = resolved_by(engine)

        def everything_done() -> bool:
            return status_counts(engine).get("resolved", 0) == ROWS

        wait_until(everything_done, 60, lambda: box_b.logs() + str(status_counts(engine)))
    finally:
        for box in boxes:
            box.close()

    with engine.connect() as conn:
        audit = conn.execute(
            sa.text("SELECT count(DISTINCT queue_id), count(*), max(n) FROM "
                    "(SELECT queue_id, count(*) AS n FROM test_resolved_audit GROUP BY queue_id) t")
        ).one()  # fmt: skip
        reclaimed = conn.execute(
            sa.text("SELECT resolver, attempt_count FROM ingredient_match_queue WHERE id = ANY(:ids)"),
            {"ids": sorted(orphaned)},
        ).all()
        run_boxes = set(conn.execute(sa.text("SELECT DISTINCT box_id FROM queue_runs")).scalars())
        providers = set(
            conn.execute(sa.text("SELECT DISTINCT provider FROM ingredient_match_queue")).scalars()
        )
    assert status_counts(engine) == {"resolved": ROWS}
    assert tuple(audit) == (ROWS, ROWS, 1)  # every row resolved, each exactly once
    assert run_boxes == {"box-a", "box-b"}
    final = resolved_by(engine)
    assert final["sous:box-a"] > 0 and final["sous:box-b"] > before_kill["sous:box-b"]
    assert orphaned and all(r.resolver == "sous:box-b" and r.attempt_count >= 2 for r in reclaimed)
    assert providers <= {"local", "cache"}, providers  # the model (or its cache), never the rules
