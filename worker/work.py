"""`sous work`: one RQ worker of the fleet (supervisord runs WORKER_COUNT of them).

SimpleWorker, deliberately: RQ 3's forking Worker starts a fresh interpreter per job
(posix_spawn), which re-imports sous and rebuilds the database pool, Redis client and the
provider chain for every chunk, about a second each, several times the work of a cached chunk.
SimpleWorker runs jobs in this process, keeps those warm, and keeps the provider cool-downs
across jobs. The isolation we give up is covered elsewhere: a worker that crashes or hangs is
restarted by supervisord, and its rows come back when their lease expires (Postgres is the
truth, every write is fenced on the attempt).

Shutdown: the first SIGTERM (or SIGINT) lets the current chunk finish, or, if it has not
reached the model yet, hands its rows back at once (release); then the worker exits. A second
SIGTERM stops at once (RQ's cold shutdown); those rows come back after their lease.

RQ's own warm shutdown raises StopRequested from the signal handler when the worker is not
busy. Between BLMOVE handing over a job and the job starting the worker is still "idle", so a
TERM landing there dropped the job: its rows stayed `processing` until the lease ran out (seen
in CI as 4 rows left after a supervisord stop). The handler here only sets a flag, and the
worker waits in short pops (IDLE_POP_SECONDS) that check it between pops, where no job is held.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

import redis
from redis.client import Pipeline
from rq import Queue, SimpleWorker, worker_registration
from rq.job import Job
from rq.utils import now

from . import tasks
from .context import WorkerContext

log = logging.getLogger(__name__)


# How long one blocking pop waits before the worker looks at its stop flag again.
IDLE_POP_SECONDS = 1


class ChunkWorker(SimpleWorker):
    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Warm stop without raising: the flag is read where no job is in hand."""
        log.info("worker_stop_requested", extra={"signal": signum, "worker": self.name})
        tasks.request_stop()
        self._shutdown_requested_date = now()  # RQ's force stop ignores a repeat within 1 s
        signal.signal(signal.SIGINT, self.request_force_stop)
        signal.signal(signal.SIGTERM, self.request_force_stop)
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Pops in short rounds until a job comes or a stop is requested (None ends work())."""
        if timeout is None:  # burst: one non-blocking pop
            return super().dequeue_job_and_maintain_ttl(None, max_idle_time)
        while not self._stop_requested:
            short = min(timeout, IDLE_POP_SECONDS)
            result = super().dequeue_job_and_maintain_ttl(short, max_idle_time=short)
            if result is not None:
                return result
        return None

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline[bytes] | None = None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is None:
            self._ensure_registered()

    def _ensure_registered(self) -> None:
        """After Redis restarts empty, RQ's registry no longer lists this worker, and the
        dispatcher, which sizes its claims by live workers, would claim nothing ever again.
        The idle heartbeat (every IDLE_POP_SECONDS) puts the worker back."""
        try:
            if self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key):
                return
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
                pipe.expire(self.key, self.worker_ttl + 60)
                pipe.execute()
            log.warning("worker_reregistered", extra={"worker": self.name})
        except redis.RedisError:
            log.warning("worker_register_error", exc_info=True)  # the next heartbeat retries


def run_worker(
    ctx: WorkerContext,
    queue_names: list[str],
    *,
    burst: bool = False,
    name: str | None = None,
    worker_ttl: int = 60,
) -> bool:
    """Runs until stopped (or, with burst, until the queues are empty)."""
    queues = [Queue(q, connection=ctx.redis) for q in queue_names]
    worker = ChunkWorker(
        queues,
        connection=ctx.redis,
        name=name or f"sous-{ctx.settings.box_id}-{os.getpid()}",
        # A dead worker stops counting as live capacity after this many seconds.
        worker_ttl=worker_ttl,
    )
    log.info("worker_start", extra={"worker": worker.name, "queues": queue_names})
    return bool(worker.work(burst=burst, logging_level=ctx.settings.log_level, with_scheduler=False))
