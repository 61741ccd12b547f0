"""Redis restarts empty: workers put themselves back in RQ's registry, so the dispatcher, which
claims only what live workers can start, keeps claiming (found by `make chaos`)."""

from __future__ import annotations

import redis
import sqlalchemy as sa
from rq import Worker

from devtools.procs import wait_until
from tests.pipeline_support import all_terminal, seed, stack


def test_workers_reregister_after_redis_is_wiped(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    with stack(database_url, redis_url, LLM_PROVIDERS="rules", WORKER_INTERVAL_SECONDS="1") as s:
        conn = redis.Redis.from_url(redis_url)
        # worker_ttl 20: RQ's idle wait (and so the heartbeat) comes every 5 s
        s.start("worker", "work", "--queues", "ingredients", "--worker-ttl", "20")
        wait_until(lambda: Worker.count(connection=conn) == 1, 30, s.logs)
        s.start("dispatch", "dispatch")
        conn.flushall()
        assert Worker.count(connection=conn) == 0
        wait_until(lambda: Worker.count(connection=conn) == 1, 30, s.logs)
        seed(engine, ["onion", "garlic", "leek"])
        wait_until(lambda: all_terminal(engine, 3), 30, s.logs)
        conn.close()
