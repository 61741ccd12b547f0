"""Menu extraction jobs: submit, retry, claim, complete, fail.

Submission runs in ONE transaction that first takes a per-user advisory lock, then checks the
hourly rate limit, looks for the same image (idempotency), checks the monthly quota and
inserts. Concurrent submissions of one user are therefore serialized: 50 at once on the free
plan give exactly 5 jobs, 20 identical ones give one. Writes after a claim are fenced on
attempt_count, like the ingredient queue: they return whether they wrote (False: the lease was
lost, `lease_lost` is logged) and the task decides what to do.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import db, jobs
from core.errors import STORED_ERROR_CHARS, SousError
from core.fetch import ImageData
from core.quotas import QuotaState, quota_state

log = logging.getLogger(__name__)

MAX_RETRIES = 3
# What a job works on (a retry copies it from the failed job).
JOB_WORK = ("image_url", "image_hash", "schema_version", "prompt_version")
DEFAULT_JOB_SECONDS = 15.0  # the processing time assumed before any job has completed


class QuotaExceeded(SousError):
    """The monthly extraction quota is used up (HTTP 403)."""

    code = "QUOTA_EXCEEDED"

    def __init__(self, state: QuotaState) -> None:
        self.state = state
        if state.monthly_uploads_exhausted:
            super().__init__(
                f"monthly upload limit reached: {state.monthly_uploads_used} of "
                f"{state.limits.monthly_uploads} (profiles.plan_limits.monthly_uploads)"
            )
            return
        super().__init__(
            f"monthly extraction quota reached: {state.monthly_used} of {state.limits.monthly} "
            f"on the {state.limits.plan} plan"
        )


class RateLimited(SousError):
    """The hourly upload limit is used up (HTTP 429)."""

    code = "RATE_LIMIT_EXCEEDED"

    def __init__(self, state: QuotaState) -> None:
        self.state = state
        self.reset_at = state.hour_resets_at or state.month_resets_at
        super().__init__(
            f"hourly upload limit reached: {state.hourly_used} of {state.limits.hourly} "
            f"in the last hour on the {state.limits.plan} plan"
        )


class JobNotFound(SousError):
    code = "JOB_NOT_FOUND"


class MaxRetriesExceeded(SousError):
    code = "MAX_RETRIES_EXCEEDED"


class JobNotRetryable(SousError):
    code = "JOB_NOT_RETRYABLE"


@dataclass(frozen=True)
class Submission:
    job: dict[str, Any]
    cached: bool  # a completed job for the same image: no new work, no quota
    created: bool  # a new job was inserted (the caller enqueues it)


def submit(
    engine: sa.Engine,
    user_id: uuid.UUID,
    image: ImageData,
    *,
    schema_version: str = "v1",
    prompt_version: str = "v1",
    force: bool = False,
) -> Submission:
    image_hash = image.sha256
    work = {
        "image_url": image.source_url,
        "image_hash": image_hash,
        "schema_version": schema_version,
        "prompt_version": prompt_version,
    }
    with db.transaction(engine) as conn:
        db.execute(conn, "menu_lock_user", {"user_id": str(user_id)})
        state = quota_state(conn, user_id)
        if state.hourly_exhausted:
            raise RateLimited(state)
        if state.monthly_uploads_exhausted:
            raise QuotaExceeded(state)
        same = _find_same(conn, user_id, work)
        # force skips a completed result, but a live job for the same image is already making
        # a fresh one: it comes back as it is (the unique index allows one live job anyway).
        if same is not None and (same["status"] != "completed" or not force):
            cached = same["status"] == "completed"
            _record_upload(conn, user_id, image_hash, same["id"], cached=cached)
            return Submission(job=same, cached=cached, created=False)
        if state.monthly_exhausted:
            raise QuotaExceeded(state)
        db.execute(
            conn,
            "menu_store_image",
            {
                "image_hash": image_hash,
                "content": image.content,
                "content_type": image.content_type,
                "byte_size": len(image.content),
            },
        )
        return _insert_job(conn, user_id, work, retry_count=0, retry_of=None)


def retry(engine: sa.Engine, user_id: uuid.UUID, job_id: uuid.UUID) -> Submission:
    """A new job for a failed one, with retry_count + 1 and retry_of; a second retry of the same
    job returns the first retry. Counts toward the hourly limit, not the monthly quota."""
    with db.transaction(engine) as conn:
        db.execute(conn, "menu_lock_user", {"user_id": str(user_id)})
        original = db.fetch_one(conn, "menu_get_user_job", {"job_id": str(job_id), "user_id": str(user_id)})
        if original is None:
            raise JobNotFound(f"no job {job_id}")
        existing = db.fetch_one(conn, "menu_find_retry_of", {"job_id": str(job_id)})
        if existing is not None:
            return Submission(job=existing, cached=False, created=False)
        if original["status"] != "failed":
            raise JobNotRetryable(f"job {job_id} is {original['status']}; only failed jobs can be retried")
        if original["retry_count"] >= MAX_RETRIES:
            raise MaxRetriesExceeded(f"job {job_id} was already retried {original['retry_count']} times")
        state = quota_state(conn, user_id)
        if state.hourly_exhausted:
            raise RateLimited(state)
        work = {k: original[k] for k in JOB_WORK}
        live = _find_same(conn, user_id, work)
        if live is not None and live["status"] != "completed":
            return Submission(job=live, cached=False, created=False)
        return _insert_job(conn, user_id, work, retry_count=original["retry_count"] + 1, retry_of=str(job_id))


def _find_same(conn: sa.Connection, user_id: uuid.UUID, work: dict[str, Any]) -> dict[str, Any] | None:
    """The user's job on the same image, schema and prompt: a live one, else the newest completed."""
    same = {k: work[k] for k in ("image_hash", "schema_version", "prompt_version")}
    return db.fetch_one(conn, "menu_find_same", {"user_id": str(user_id), **same})


def _insert_job(
    conn: sa.Connection, user_id: uuid.UUID, work: dict[str, Any], *, retry_count: int, retry_of: str | None
) -> Submission:
    """A new queued job on `work` (JOB_WORK), its ids from core.jobs, and its upload recorded."""
    job_id = uuid.uuid4()
    ids = {"id": str(job_id), "rq_job_id": jobs.menu_rq_id(job_id), "user_id": str(user_id)}
    retry = {"retry_count": retry_count, "retry_of": retry_of}
    job = db.fetch_one(conn, "menu_insert_job", {**ids, **work, **retry})
    assert job is not None
    _record_upload(conn, user_id, work["image_hash"], job["id"], cached=False)
    return Submission(job=job, cached=False, created=True)


def _record_upload(
    conn: sa.Connection, user_id: uuid.UUID, image_hash: str, job_id: uuid.UUID, *, cached: bool
) -> None:
    db.execute(
        conn,
        "menu_record_upload",
        {"user_id": str(user_id), "image_hash": image_hash, "job_id": str(job_id), "cached": cached},
    )


def get_user_job(engine: sa.Engine, user_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    """A job of this user; another user's job is not found, the same as a missing one."""
    with db.transaction(engine) as conn:
        job = db.fetch_one(conn, "menu_get_user_job", {"job_id": str(job_id), "user_id": str(user_id)})
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


def get_quota(engine: sa.Engine, user_id: uuid.UUID) -> QuotaState:
    with db.transaction(engine) as conn:
        return quota_state(conn, user_id)


def check_quota_before_fetch(engine: sa.Engine, user_id: uuid.UUID) -> None:
    """A read-only look at the hourly limit and the monthly quota before costly work (fetching
    an image by URL), raising what `submit` would. Not the authoritative check: `submit`
    checks again in its serialized transaction. A URL's bytes are unknown before the fetch, so
    a user out of monthly quota is refused here even if the image has a cached result (an
    upload of it, or the job's status, still returns that result)."""
    state = get_quota(engine, user_id)
    if state.hourly_exhausted:
        raise RateLimited(state)
    if state.monthly_exhausted:
        raise QuotaExceeded(state)


def estimate_seconds(engine: sa.Engine, workers: int) -> float:
    """Time until a job submitted now completes: the jobs ahead of it (queued and processing)
    plus itself, spread over the workers, at the mean processing time of recent jobs."""
    with db.transaction(engine) as conn:
        depth = db.fetch_one(conn, "menu_queue_depth") or {"queued": 0, "processing": 0}
        recent = db.fetch_one(conn, "menu_recent_processing_ms") or {"mean_ms": None}
    per_job = (recent["mean_ms"] or DEFAULT_JOB_SECONDS * 1000) / 1000
    ahead = int(depth["queued"]) + int(depth["processing"])
    rounds = (ahead // max(workers, 1)) + 1
    return round(rounds * per_job, 1)


# ----------------------------------------------------------------------- worker side


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    attempt: int
    user_id: uuid.UUID
    image_hash: str | None  # None for a job the old app queued (its photo is at image_url)
    schema_version: str
    prompt_version: str
    processing_started_at: datetime
    image_url: str | None = None


def claim(engine: sa.Engine, job_id: str, *, resolver: str, lease_seconds: int) -> ClaimedJob | None:
    with db.transaction(engine) as conn:
        row = db.fetch_one(
            conn, "menu_claim_job", {"job_id": job_id, "resolver": resolver, "lease_seconds": lease_seconds}
        )
    if row is None:
        return None
    columns = {f.name: row.get(f.name) for f in fields(ClaimedJob)}
    return ClaimedJob(**{**columns, "attempt": row["attempt_count"]})


def extend_lease(engine: sa.Engine, job: ClaimedJob, lease_seconds: int) -> bool:
    """Renews the lease between long steps; False when another claim owns the job now."""
    return _fenced_write(engine, "menu_extend", "menu_extend_lease", job, {"lease_seconds": lease_seconds})


def load_image(engine: sa.Engine, image_hash: str) -> bytes | None:
    with db.transaction(engine) as conn:
        row = db.fetch_one(conn, "menu_load_image", {"image_hash": image_hash})
    return bytes(row["content"]) if row else None


def complete(
    engine: sa.Engine,
    job: ClaimedJob,
    *,
    result: dict[str, Any],
    confidence: float | None,
    token_usage: dict[str, Any] | None,
    processing_ms: int,
) -> bool:
    """Writes the result; False when the lease was lost (nothing written)."""
    params = {
        "result": json.dumps(result),
        "confidence": confidence,
        "uncertain_items": json.dumps(result.get("uncertainItems", [])),
        "superfluous_text": json.dumps(result.get("superfluousText", [])),
        "token_usage": json.dumps(token_usage) if token_usage is not None else None,
        "processing_time": processing_ms,
    }
    return _fenced_write(engine, "menu_complete", "menu_complete_job", job, params)


def fail(engine: sa.Engine, job: ClaimedJob, error: str, processing_ms: int) -> bool:
    """Fails the job with the reason; False when the lease was lost (nothing written)."""
    params = {"error": error[:STORED_ERROR_CHARS], "processing_time": processing_ms}
    return _fenced_write(engine, "menu_fail", "menu_fail_job", job, params)


def _fenced_write(engine: sa.Engine, op: str, query: str, job: ClaimedJob, params: dict[str, Any]) -> bool:
    """Runs a write conditional on the claim's attempt: True if it wrote, else logs `lease_lost`."""
    with db.transaction(engine) as conn:
        written = db.fetch_one(conn, query, {"job_id": str(job.id), "attempt": job.attempt, **params})
    if written is None:
        log.warning("lease_lost", extra={"op": op, "job_id": str(job.id), "attempt": job.attempt})
    return written is not None


def sweep_lost(
    engine: sa.Engine, *, max_attempts: int, grace_seconds: int, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The dispatcher's sweep, in one transaction: fails the jobs whose workers died on every
    attempt (given up: their ids), and finds the queued jobs older than `grace_seconds` and the
    processing jobs whose lease expired (lost: id, status, attempt_count, rq_job_id)."""
    with db.transaction(engine) as conn:
        given_up = db.fetch_all(conn, "menu_fail_exhausted", {"max_attempts": max_attempts})
        lost = db.fetch_all(conn, "menu_lost_candidates", {"grace_seconds": grace_seconds, "limit": limit})
    return given_up, lost
