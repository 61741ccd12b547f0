"""A warm stop never drops a job the worker has already popped.

RQ's own handler raises StopRequested from the signal handler while the worker is "idle", and
that includes the moment after BLMOVE handed it a job and before the job started: the job then
sat in RQ's intermediate list and its rows stayed `processing` until their lease ran out. The
test lands the stop exactly there (inside the real pop against a real Redis) and checks that
the job still runs and the worker then exits.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest
import redis
from rq import Queue

from worker import work
from worker.work import ChunkWorker

RAN_KEY = "test:worker-stop:ran"


def mark_ran(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).incr(RAN_KEY)


def _worker(redis_url: str) -> tuple[ChunkWorker, Queue, redis.Redis[bytes]]:
    conn = redis.Redis.from_url(redis_url)
    queue = Queue("stop-test", connection=conn)
    return ChunkWorker([queue], connection=conn, name="stop-test-worker", worker_ttl=30), queue, conn


def test_stop_landing_right_after_the_pop_still_runs_the_job(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, queue, conn = _worker(redis_url)
    queue.enqueue(mark_ran, redis_url)
    real_dequeue = Queue.dequeue_any.__func__  # type: ignore[attr-defined]

    def dequeue_then_signal(cls: type[Queue], *args: Any, **kwargs: Any) -> Any:
        result = real_dequeue(cls, *args, **kwargs)
        if result is not None:
            # SIGTERM arrives now: the job is out of the queue and not started yet.
            worker.request_stop(signal.SIGTERM, None)
        return result

    monkeypatch.setattr(Queue, "dequeue_any", classmethod(dequeue_then_signal))
    worker.work(burst=False, with_scheduler=False)

    assert conn.get(RAN_KEY) == b"1", "the popped job was dropped by the stop"
    assert queue.count == 0
    assert conn.llen(f"{queue.key}:intermediate") == 0
    assert worker._stop_requested


def test_stop_while_idle_ends_the_worker_within_a_pop(redis_url: str) -> None:
    worker, _, _ = _worker(redis_url)
    done = threading.Event()

    def run() -> None:
        worker.work(burst=False, with_scheduler=False)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    # Signal handlers can only be installed on the main thread; the worker installs them in
    # work(), so install a no-op first and call request_stop directly, as the handler would.
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(ChunkWorker, "_install_signal_handlers", lambda self: None)
    monkeypatch.setattr(work.signal, "signal", lambda *a: None)
    try:
        thread.start()
        time.sleep(1.5)  # in the blocking pop, no job
        assert not done.is_set()
        stopped_at = time.monotonic()
        worker.request_stop(signal.SIGTERM, None)
        assert done.wait(work.IDLE_POP_SECONDS + 5), "worker kept waiting after the stop"
        assert time.monotonic() - stopped_at < work.IDLE_POP_SECONDS + 5
    finally:
        monkeypatch.undo()
