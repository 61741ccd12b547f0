"""Two dispatchers on one box: one leads, the other waits; kill the leader and the other takes
over. A dispatcher with another BOX_ID leads its own box at the same time."""

from __future__ import annotations

import signal

import redis
import sqlalchemy as sa
from rq import Worker

from devtools.procs import wait_until
from tests.pipeline_support import all_terminal, seed, stack


def test_second_dispatcher_waits_then_takes_over(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    with stack(database_url, redis_url, LLM_PROVIDERS="rules") as s:
        s.start("worker", "work", "--queues", "ingredients")
        conn = redis.Redis.from_url(redis_url)
        wait_until(lambda: Worker.count(connection=conn) == 1, 30, s.logs)
        conn.close()
        first = s.start("dispatch-a", "dispatch")
        wait_until(lambda: bool(first.events("dispatch_leader")), 30, s.logs)
        second = s.start("dispatch-b", "dispatch")
        wait_until(lambda: bool(second.events("dispatch_standby")), 30, s.logs)

        seed(engine, ["onion", "garlic", "salt"])
        wait_until(lambda: all_terminal(engine, 3), 30, s.logs)
        assert first.events("dispatch_cycle")
        assert not second.events("dispatch_cycle") and not second.events("dispatch_leader")

        other_box = s.start("dispatch-other-box", "dispatch", BOX_ID="another-box")
        wait_until(lambda: bool(other_box.events("dispatch_leader")), 30, s.logs)
        other_box.signal(signal.SIGTERM)  # leave this box's rows to this box's dispatchers
        assert other_box.popen.wait(timeout=15) == 0

        first.signal(signal.SIGKILL)
        wait_until(lambda: bool(second.events("dispatch_leader")), 15, s.logs)
        seed(engine, ["leek", "carrot"])
        wait_until(lambda: all_terminal(engine, 5), 30, s.logs)
        assert second.events("dispatch_cycle")
