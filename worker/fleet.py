"""Where the dispatcher sends chunks: the RQ fleet, or inline in this process (`sous drain`).

The RQ fleet also answers "how many rows can the workers start soon": live workers times
QUEUE_CHUNK_CONCURRENCY chunks, minus the chunks already queued or running. Claiming more
would leave rows sitting in Redis while their lease runs out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import redis
import sqlalchemy as sa
from rq import Queue, Worker
from rq.exceptions import DuplicateJobError
from rq.registry import StartedJobRegistry

from core import db, jobs
from core import queue as queue_ops
from core.settings import Settings

from .payload import ChunkPayload
from .tasks import ChunkOutcome, ChunkRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Capacity:
    rows: int | None  # None: no limit (inline)
    live_workers: int | None = None
    outstanding_chunks: int | None = None


class Fleet(Protocol):
    def capacity(self) -> Capacity: ...

    def submit(self, payload: ChunkPayload, job_id: str) -> ChunkOutcome | None:
        """Hands a chunk over; returns its outcome when it ran inline, None when queued."""
        ...

    def release_unstarted(self, engine: sa.Engine) -> int:
        """On shutdown: hands back the rows of chunks no worker has started; returns the rows."""
        ...


class InlineFleet:
    """Runs each chunk at once in this process: the nightly drain, no Redis needed."""

    def __init__(self, runner: ChunkRunner) -> None:
        self.runner = runner

    def capacity(self) -> Capacity:
        return Capacity(rows=None)

    def submit(self, payload: ChunkPayload, job_id: str) -> ChunkOutcome | None:
        return self.runner.run(payload)

    def release_unstarted(self, engine: sa.Engine) -> int:
        return 0  # inline chunks have all run


class RqFleet:
    def __init__(self, connection: redis.Redis[bytes], settings: Settings) -> None:
        self.settings = settings
        self.queue = Queue(jobs.INGREDIENT_QUEUE, connection=connection)

    def capacity(self) -> Capacity:
        live = len(Worker.all(queue=self.queue))
        outstanding = self.queue.count + StartedJobRegistry(queue=self.queue).count
        free_chunks = max(0, live * self.settings.queue_chunk_concurrency - outstanding)
        return Capacity(
            rows=free_chunks * self.settings.queue_chunk_max_items,
            live_workers=live,
            outstanding_chunks=outstanding,
        )

    def submit(self, payload: ChunkPayload, job_id: str) -> ChunkOutcome | None:
        try:
            jobs.enqueue_chunk(
                self.queue,
                payload.to_json(),
                job_id,
                lease_seconds=self.settings.queue_lease_seconds,
                rows=len(payload.rows),
            )
        except DuplicateJobError:
            log.info("chunk_already_enqueued", extra={"job_id": job_id})
        return None

    def release_unstarted(self, engine: sa.Engine) -> int:
        """A box that stops (supervisord, `make dev-down`, a compose restart) should not leave
        claimed rows waiting out their lease in a Redis queue nobody reads. A job is taken out of
        the queue first (LREM): only a job no worker can start any more has its rows released,
        and the release is fenced on the claim's attempt like every other write."""
        released = 0
        for job_id in self.queue.get_job_ids():
            if not self.queue.remove(job_id):
                continue  # a worker took it meanwhile: it finishes or releases it itself
            job = self.queue.fetch_job(job_id)
            if job is None:
                continue
            try:
                payload = ChunkPayload.from_json(job.args[0])
                with db.transaction(engine) as conn:
                    released += len(queue_ops.release_rows(conn, payload.rows, reason="box stopping"))
            finally:
                job.delete()
        if released:
            log.info("chunks_released_on_stop", extra={"rows": released})
        return released
