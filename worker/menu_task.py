"""The menu job (RQ task `worker.menu_task.run_menu_job`) and the dispatcher's sweep for lost
menu jobs.

A job: claim (fenced on attempt_count, leased), load the image, OCR, structure through the
provider chain (the deterministic parser last), write the result fenced on the attempt; the
table's trigger NOTIFYs every status change. A database blip retries with backoff before the
job is failed; an image that can never be read (not an image, a decompression bomb) fails the
job at once with the reason; a worker killed mid-job leaves the lease to expire, and the
dispatcher's sweep enqueues the job again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from core import jobs, menu_jobs
from core.errors import DatabaseError, InvalidInput
from core.fetch import SafeFetcher, policy_allowing
from core.logging import log_text
from model.menu import MenuStructurer
from model.ocr import ocr_image
from worker.context import WorkerContext, get_context

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_DELAYS = (0.5, 1.0, 2.0)  # transient failures inside a job: database blips
HASH_SHOWN_CHARS = 12  # how much of an image's hash a message shows
QUEUED_GRACE_SECONDS = 30  # a queued job younger than this may still be on its way to RQ
LIVE_RQ_STATES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}

_structurer: tuple[int, MenuStructurer] | None = None


def structurer(ctx: WorkerContext) -> MenuStructurer:
    """One structurer (provider chain) per process: cool-downs persist across jobs."""
    global _structurer  # noqa: PLW0603 - per process, rebuilt after fork
    if _structurer is None or _structurer[0] != os.getpid():
        _structurer = (os.getpid(), MenuStructurer.from_settings(ctx.settings))
    return _structurer[1]


def with_retries(what: str, fn: Callable[[], T], delays: tuple[float, ...] = RETRY_DELAYS) -> T:
    for delay in (*delays, None):
        try:
            return fn()
        except DatabaseError as exc:
            if delay is None:
                raise
            log.warning("menu_transient_retry", extra={"step": what, "error": log_text(exc), "delay": delay})
            time.sleep(delay)
    raise AssertionError("unreachable")


def run_menu_job(job_id: str) -> dict[str, Any]:
    ctx = get_context()
    settings = ctx.settings
    resolver = f"{settings.box_id}:{os.getpid()}"
    job = with_retries(
        "claim",
        lambda: menu_jobs.claim(
            ctx.engine, job_id, resolver=resolver, lease_seconds=settings.queue_lease_seconds
        ),
    )
    if job is None:
        log.info("menu_job_skipped", extra={"job_id": job_id, "reason": "not claimable"})
        return {"job_id": job_id, "status": "skipped"}
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    if job.attempt > settings.queue_max_attempts:
        menu_jobs.fail(ctx.engine, job, f"gave up after {job.attempt - 1} attempts", elapsed_ms())
        return {"job_id": job_id, "status": "failed"}
    log.info("menu_job_start", extra={"job_id": job_id, "attempt": job.attempt})
    try:
        image = job_image(ctx, job)
        ocr = ocr_image(
            image,
            settings.menu_max_image_pixels,
            engine=settings.menu_ocr_engine,
            timeout=settings.menu_ocr_timeout_seconds,
        )
        # The model step may take a while (timeouts, fallbacks): a fresh lease for it.
        if not with_retries(
            "extend_lease", lambda: menu_jobs.extend_lease(ctx.engine, job, settings.queue_lease_seconds)
        ):
            return {"job_id": job_id, "status": "lease_lost"}
        extraction = structurer(ctx).structure(ocr)
        if not with_retries(
            "complete",
            lambda: menu_jobs.complete(
                ctx.engine,
                job,
                result=extraction.result,
                confidence=extraction.confidence,
                token_usage=extraction.token_usage,
                processing_ms=elapsed_ms(),
            ),
        ):
            return {"job_id": job_id, "status": "lease_lost"}
    except InvalidInput as exc:
        reason = str(exc)
        log.warning("menu_job_rejected", extra={"job_id": job_id, "error": log_text(reason)})
        with_retries("fail", lambda: menu_jobs.fail(ctx.engine, job, reason, elapsed_ms()))
        return {"job_id": job_id, "status": "failed", "error": reason}
    except Exception as exc:  # nothing may crash the worker: the job fails with the reason
        log.exception("menu_job_failed", extra={"job_id": job_id})
        message = f"{exc.__class__.__name__}: {exc}"
        with_retries("fail", lambda: menu_jobs.fail(ctx.engine, job, message, elapsed_ms()))
        return {"job_id": job_id, "status": "failed", "error": message}
    log.info(
        "menu_job_done",
        extra={
            "job_id": job_id,
            "ms": elapsed_ms(),
            "provider": extraction.provider,
            "conf": extraction.confidence,
        },
    )
    return {"job_id": job_id, "status": "completed", "provider": extraction.provider}


def job_image(ctx: WorkerContext, job: menu_jobs.ClaimedJob) -> bytes:
    """The job's photo: from menu_images, or, for a job the old app queued in ocr_jobs (no stored
    bytes), fetched from its image_url with the API's checks (size, private addresses)."""
    if job.image_hash:
        image_hash = job.image_hash
        image = with_retries("load_image", lambda: menu_jobs.load_image(ctx.engine, image_hash))
        if image is not None:
            return image
    if not job.image_url:
        raise InvalidInput(
            f"the image {(job.image_hash or '')[:HASH_SHOWN_CHARS]}… is missing from menu_images"
        )
    s = ctx.settings
    fetcher = SafeFetcher(
        max_bytes=s.menu_max_image_bytes,
        allow_private=s.menu_allow_private_hosts,
        policy=policy_allowing(s.fetch_allowed_networks),
        deadline_seconds=s.menu_fetch_deadline_seconds,
    )
    try:
        # The fetcher is async (the API runs it on its event loop); a worker runs one job at a time.
        return asyncio.run(fetcher.fetch(job.image_url)).content
    finally:
        fetcher.close()


def _rq_live(ctx: WorkerContext, rq_id: str) -> bool:
    try:
        job = Job.fetch(rq_id, connection=ctx.redis)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in LIVE_RQ_STATES


def reenqueue_lost_menu_jobs(ctx: WorkerContext, limit: int = 200) -> int:
    """Called by the dispatcher every cycle. Fails jobs whose workers died on every attempt,
    re-enqueues queued jobs whose RQ job vanished (Redis restart, enqueue failed) and processing
    jobs whose lease expired (worker killed). Returns how many were enqueued."""
    given_up, lost = menu_jobs.sweep_lost(
        ctx.engine,
        max_attempts=ctx.settings.queue_max_attempts,
        grace_seconds=QUEUED_GRACE_SECONDS,
        limit=limit,
    )
    for row in given_up:
        log.warning("menu_job_given_up", extra={"job_id": str(row["id"])})
    count = 0
    for row in lost:
        job_id = str(row["id"])
        # A reclaim gets its own RQ id: the dead attempt's RQ job may still look "started".
        rq_id = jobs.menu_rq_id(job_id, None if row["status"] == "queued" else row["attempt_count"])
        if _rq_live(ctx, rq_id):
            continue
        jobs.enqueue_menu_job(ctx.redis, job_id, rq_id)
        log.info("menu_job_reenqueued", extra={"job_id": job_id, "rq_id": rq_id, "status": row["status"]})
        count += 1
    return count
