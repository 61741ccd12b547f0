"""Workers that die: SIGKILL mid-chunk (rows come back after the lease and resolve exactly once)
and SIGTERM (the current chunk finishes, then the worker exits)."""

from __future__ import annotations

import signal

import redis
import sqlalchemy as sa
from rq import Worker

from devtools.procs import wait_until
from tests.pipeline_support import all_terminal, install_audit, seed, stack

NAMES = ["onion", "garlic", "leek", "carrot", "celery", "butter"]


def test_sigkilled_worker_rows_are_reclaimed_after_the_lease_and_resolved_once(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    install_audit(engine)
    env = {
        "QUEUE_LEASE_SECONDS": "3",
        "WORKER_INTERVAL_SECONDS": "1",
        "LOCAL_LLM_TIMEOUT_MS": "60000",
        "QUEUE_CHUNK_MAX_ITEMS": "25",  # every row in the one chunk the doomed worker holds
    }
    with stack(database_url, redis_url, **env) as s:
        s.start_sim("instant")
        s.sim_faults(timeout_rate=1.0)  # the model hangs: the worker is stuck mid-chunk
        doomed = s.start("doomed", "work", "--queues", "ingredients", "--worker-ttl", "15")
        conn = redis.Redis.from_url(redis_url)
        wait_until(lambda: Worker.count(connection=conn) == 1, 30, s.logs)
        s.start("dispatch", "dispatch")
        seed(engine, NAMES)
        wait_until(lambda: s.sim_requests() >= 1, 30, s.logs)  # inside the model call
        doomed.signal(signal.SIGKILL)
        doomed.popen.wait(timeout=10)
        s.sim_faults(timeout_rate=0.0)
        s.start("survivor", "work", "--queues", "ingredients")
        wait_until(lambda: all_terminal(engine, len(NAMES)), 60, s.logs)
        conn.close()
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT status, attempt_count FROM ingredient_match_queue")).all()
        audit = c.execute(
            sa.text("SELECT queue_id, count(*) AS n FROM test_resolved_audit GROUP BY queue_id")
        ).all()
    assert all(r.status == "resolved" and r.attempt_count >= 2 for r in rows)  # claimed again
    assert len(audit) == len(NAMES) and all(a.n == 1 for a in audit)  # resolved exactly once


def test_first_sigterm_finishes_the_current_chunk_then_exits(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    env = {"LOCAL_LLM_TIMEOUT_MS": "1500", "LLM_PROVIDERS": "local,rules", "QUEUE_CHUNK_MAX_ITEMS": "25"}
    with stack(database_url, redis_url, **env) as s:
        s.start_sim("instant")
        s.sim_faults(timeout_rate=1.0)  # the chunk takes a while: time-outs, then the rules
        worker = s.start("worker", "work", "--queues", "ingredients")
        conn = redis.Redis.from_url(redis_url)
        wait_until(lambda: Worker.count(connection=conn) == 1, 30, s.logs)
        conn.close()
        s.start("dispatch", "dispatch")
        seed(engine, NAMES)
        wait_until(lambda: s.sim_requests() >= 1, 30, s.logs)
        worker.signal(signal.SIGTERM)
        assert worker.popen.wait(timeout=30) == 0
        assert all_terminal(engine, len(NAMES))  # finished, not abandoned
        with engine.connect() as c:
            providers = set(
                c.execute(sa.text("SELECT DISTINCT provider FROM ingredient_match_queue")).scalars()
            )
        assert providers == {"rules"}
