"""Notifications off (QUEUE_LISTEN=false, as behind PgBouncer in transaction mode): the dispatcher
does not LISTEN and the sweep alone drains the queue, every min(WORKER_INTERVAL_SECONDS, 5) s."""

from __future__ import annotations

import time
from functools import partial

import redis
import sqlalchemy as sa
from rq import Worker

from devtools.procs import wait_until
from tests.pipeline_support import all_terminal, seed, stack


def test_rows_drain_by_the_sweep_with_notifications_off(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    # WORKER_INTERVAL_SECONDS stays at its production default: without notifications the
    # dispatcher shortens the sweep by itself, or these rows would wait five minutes.
    env = {"LLM_PROVIDERS": "rules", "QUEUE_LISTEN": "false", "WORKER_INTERVAL_SECONDS": "300"}
    with stack(database_url, redis_url, **env) as s:
        s.start("worker", "work", "--queues", "ingredients")
        client = redis.Redis.from_url(redis_url)
        wait_until(lambda: Worker.count(connection=client) == 1, 30, s.logs)
        client.close()
        dispatch = s.start("dispatch", "dispatch")
        wait_until(lambda: bool(dispatch.events("dispatch_sweep")), 30, s.logs)
        (sweep,) = dispatch.events("dispatch_sweep")
        assert sweep["listening"] is False and sweep["sweep_seconds"] == 5.0
        total = 0
        for batch in (["onion", "garlic"], ["leek", "carrot", "celery"], ["butter"]):
            seed(engine, batch)
            total += len(batch)
            started = time.monotonic()
            wait_until(partial(all_terminal, engine, total), 30, s.logs)
            # A 5 s sweep, not the 300 s interval: a few sweeps at most even on a loaded CI box
            # (8.5 s was seen with a bound of 8; the sweep_seconds above pins the interval itself).
            assert time.monotonic() - started < 20
        triggers = {e["trigger"] for e in dispatch.events("dispatch_cycle")}
    assert "sweep" in triggers and "notify" not in triggers
    assert not dispatch.events("dispatch_notify_unavailable")  # off by choice, not detected
