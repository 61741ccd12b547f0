"""The RQ job contract: queue names, task paths, timeouts, job ids, and enqueueing a menu job.

The one door to RQ for the API, the dispatcher and the workers (as procrastinate's `defer`).
Tasks are named by path: api/ never imports worker/, and RQ imports the task in the work horse.
Postgres stays the truth; an RQ job only says "run this now", so every id here is derived from
the database row (a lost RQ job is re-enqueued under the same id by the dispatcher's sweep).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import redis
from rq import Queue

# Queue names, in the workers' priority order (a user waits on a menu; ingredient rows don't).
MENU_QUEUE = "menus"
INGREDIENT_QUEUE = "ingredients"
QUEUES = (MENU_QUEUE, INGREDIENT_QUEUE)

# Task paths (RQ imports them in the work horse).
CHUNK_TASK = "worker.tasks.process_chunk"
MENU_TASK = "worker.menu_task.run_menu_job"

MENU_JOB_TIMEOUT = 600  # seconds: OCR + the model chain of one menu
MIN_CHUNK_TIMEOUT = 600  # seconds; a chunk's lease is renewed while it runs, this ends a hang
RESULT_TTL = 600  # seconds RQ keeps a finished job's return value
CHUNK_FAILURE_TTL = 7 * 86400  # seconds RQ keeps a failed chunk (for `rq info` and post-mortems)

# Chunk job-id prefixes: a DRY_RUN chunk is a shadow job (it runs on the ingredients queue).
CHUNK_PREFIX = INGREDIENT_QUEUE
SHADOW_CHUNK_PREFIX = "shadow"
MENU_PREFIX = "menu-"
CHUNK_DIGEST_CHARS = 24  # hex digits of a chunk's job id digest (96 bits: no two claims collide)


def menu_rq_id(job_id: object, attempt: int | None = None) -> str:
    """The RQ id of a menu job: `menu-{id}` for its first run, `menu-{id}-a{attempt}` for the
    sweep's reclaim of an expired attempt (the dead attempt's RQ job may still look started)."""
    return f"{MENU_PREFIX}{job_id}" if attempt is None else f"{MENU_PREFIX}{job_id}-a{attempt}"


def chunk_job_id(prefix: str, fences: Iterable[tuple[int | str, int]]) -> str:
    """A deterministic RQ job id for the exact (row id, attempt) pairs of a chunk: the same claim
    enqueued twice is one job, and a new claim of the same rows is a new job."""
    digest = hashlib.sha256()
    # Ids of one table are all ints (numeric order, as before) or all strings (uuid, text).
    for row_id, attempt in sorted(fences, key=lambda f: (str(f[0]).zfill(20), f[1])):
        digest.update(f"{row_id}:{attempt};".encode())
    return f"{prefix}-{digest.hexdigest()[:CHUNK_DIGEST_CHARS]}"


def chunk_prefix(dry_run: bool) -> str:
    return SHADOW_CHUNK_PREFIX if dry_run else CHUNK_PREFIX


def chunk_timeout(lease_seconds: int) -> int:
    return max(lease_seconds * 4, MIN_CHUNK_TIMEOUT)


def enqueue_menu_job(connection: redis.Redis[bytes], job_id: str, rq_id: str | None = None) -> None:
    """Puts menu job `job_id` (a menu_extraction_jobs id) on the menus queue as `rq_id`
    (default: its first-run id, menu_rq_id(job_id))."""
    Queue(MENU_QUEUE, connection=connection).enqueue(
        MENU_TASK,
        job_id,
        job_id=rq_id or menu_rq_id(job_id),
        job_timeout=MENU_JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
    )


def enqueue_chunk(
    queue: Queue, payload: dict[str, Any], job_id: str, *, lease_seconds: int, rows: int
) -> None:
    """Puts one ingredient chunk on `queue` (the ingredients queue) as `job_id`; raises
    rq's DuplicateJobError when that exact claim is already enqueued."""
    queue.enqueue(
        CHUNK_TASK,
        payload,
        job_id=job_id,
        unique=True,  # the same claim enqueued twice is one job
        job_timeout=chunk_timeout(lease_seconds),
        result_ttl=RESULT_TTL,
        failure_ttl=CHUNK_FAILURE_TTL,
        description=f"ingredient chunk of {rows} rows",
    )
