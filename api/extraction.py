"""Menu extraction routes: submit, status, retry, quota, events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import UploadFile

from api.errors import ApiError, responses
from api.events import EventsUnavailable
from api.state import AppState, State, User
from core import jobs, menu_jobs
from core.fetch import ImageData, ImageTooLarge, check_pixels, sniff_image_type
from core.logging import log_text

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/extraction", tags=["extraction"])
SSE_SUBSCRIBERS = Gauge("sous_api_sse_subscribers", "open SSE job-event streams", multiprocess_mode="livesum")
_VERSION = r"^[A-Za-z0-9._-]{1,32}$"
STREAM_RENEW_SECONDS = 20.0  # well inside api.limiter.STREAM_LEASE


class SubmitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schemaVersion: str = Field(default="v1", pattern=_VERSION)
    promptVersion: str = Field(default="v1", pattern=_VERSION)
    force: bool = False


class SubmitJson(SubmitOptions):
    imageUrl: str = Field(min_length=1, max_length=2048)


class SubmitResponse(BaseModel):
    success: bool
    jobId: uuid.UUID
    cached: bool
    estimatedTime: float = Field(description="seconds until the result, from queue depth and recent jobs")
    status: str


class JobView(BaseModel):
    id: uuid.UUID
    status: str
    result: dict[str, Any] | None
    error: str | None
    confidence: float | None
    processingTime: int | None = Field(description="milliseconds")
    createdAt: datetime
    completedAt: datetime | None
    retryCount: int
    retryOf: uuid.UUID | None


class StatusResponse(BaseModel):
    success: bool
    job: JobView


class QuotaWindow(BaseModel):
    limit: int | None
    used: int
    remaining: int | None
    resetAt: str | None


class QuotaResponse(BaseModel):
    success: bool
    plan: str
    monthly: QuotaWindow
    hourly: QuotaWindow


def job_view(job: dict[str, Any]) -> JobView:
    return JobView(
        id=job["id"],
        status=job["status"],
        result=job["result"],
        error=job["error_message"],
        confidence=job["confidence"],
        processingTime=job["processing_time"],
        createdAt=job["created_at"],
        completedAt=job["completed_at"],
        retryCount=job["retry_count"],
        retryOf=job["retry_of"],
    )


def enqueue(state: AppState, job_id: uuid.UUID) -> None:
    """Hands the job to RQ. Postgres already has it: if Redis is down, the dispatcher's sweep
    re-enqueues it later, so a failure here is logged, not returned to the user."""
    try:
        jobs.enqueue_menu_job(state.redis, str(job_id))
    except Exception as exc:  # redis down: the sweep covers it
        log.warning("menu_enqueue_failed", extra={"job_id": str(job_id), "error": log_text(exc)})


SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SubmitJson.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "schemaVersion": {"type": "string", "pattern": _VERSION},
                        "promptVersion": {"type": "string", "pattern": _VERSION},
                        "force": {"type": "boolean"},
                    },
                }
            },
        },
    }
}


def _invalid(exc: ValidationError) -> ApiError:
    details = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
    return ApiError(400, "INVALID_INPUT", "the request is not valid", details=details)


async def _read_submission(
    request: Request, state: AppState, user_id: uuid.UUID
) -> tuple[ImageData, SubmitOptions]:
    content_type = request.headers.get("content-type", "")
    max_bytes = state.settings.menu_max_image_bytes
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "INVALID_INPUT", "multipart submissions need a 'file' part with the image")
        content = await upload.read(max_bytes + 1)
        if len(content) > max_bytes:
            raise ImageTooLarge(f"image is over the limit of {max_bytes:,} bytes")
        mime = sniff_image_type(content)
        if mime is None:
            raise ApiError(
                400, "INVALID_INPUT", "the file is not an image (JPEG, PNG, WebP, GIF, BMP or TIFF)"
            )
        fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
        try:
            options = SubmitOptions.model_validate(fields)
        except ValidationError as exc:
            raise _invalid(exc) from None
        return ImageData(content, mime, None), options
    if content_type.split(";")[0].strip() not in ("application/json", ""):
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send JSON {imageUrl} or a multipart 'file'")
    try:
        body = SubmitJson.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _invalid(exc) from None
    # Cheap and read-only first: a user out of quota makes the server fetch nothing.
    await run_in_threadpool(menu_jobs.check_quota_before_fetch, state.engine, user_id)
    async with state.limits.fetch_slot(str(user_id)):
        fetched = await state.fetcher.fetch(body.imageUrl)
    return replace(fetched, source_url=body.imageUrl), body  # the job keeps the URL submitted


@router.post(
    "/submit",
    response_model=SubmitResponse,
    responses=responses(400, 401, 403, 413, 415, 429, 503),
    openapi_extra=SUBMIT_BODY,
)
async def submit(request: Request, state: State, user: User) -> SubmitResponse:
    """Submit a menu photo by URL (JSON) or upload (multipart). By URL, the quota and hourly
    limit are looked at before the fetch; 429 `TOO_MANY_FETCHES` past `MENU_FETCH_PER_USER`
    fetches in flight, 503 `FETCH_CAPACITY` when the process runs `MENU_FETCH_PER_PROCESS`."""
    image, options = await _read_submission(request, state, user.user_id)
    check_pixels(image.content, state.settings.menu_max_image_pixels)  # bombs never reach the queue
    result = await run_in_threadpool(
        menu_jobs.submit,
        state.engine,
        user.user_id,
        image,
        schema_version=options.schemaVersion,
        prompt_version=options.promptVersion,
        force=options.force,
    )
    if result.created:
        await run_in_threadpool(enqueue, state, result.job["id"])
    estimate = 0.0
    if not result.cached:
        estimate = await run_in_threadpool(
            menu_jobs.estimate_seconds, state.engine, state.settings.worker_count
        )
    log.info(
        "menu_submitted",
        extra={"job_id": str(result.job["id"]), "cached": result.cached, "new_job": result.created},
    )
    return SubmitResponse(
        success=True,
        jobId=result.job["id"],
        cached=result.cached,
        estimatedTime=estimate,
        status=result.job["status"],
    )


@router.get("/status/{job_id}", response_model=StatusResponse, responses=responses(400, 401, 404, 503))
def status(job_id: uuid.UUID, state: State, user: User) -> StatusResponse:
    return StatusResponse(
        success=True, job=job_view(menu_jobs.get_user_job(state.engine, user.user_id, job_id))
    )


@router.post(
    "/retry/{job_id}", response_model=SubmitResponse, responses=responses(400, 401, 404, 409, 429, 503)
)
def retry(job_id: uuid.UUID, state: State, user: User) -> SubmitResponse:
    """A new job for a failed one (retry_count + 1); 409 MAX_RETRIES_EXCEEDED after 3."""
    result = menu_jobs.retry(state.engine, user.user_id, job_id)
    if result.created:
        enqueue(state, result.job["id"])
    return SubmitResponse(
        success=True,
        jobId=result.job["id"],
        cached=False,
        estimatedTime=menu_jobs.estimate_seconds(state.engine, state.settings.worker_count),
        status=result.job["status"],
    )


@router.get("/quota", response_model=QuotaResponse, responses=responses(401, 503))
def quota(state: State, user: User) -> QuotaResponse:
    data = menu_jobs.get_quota(state.engine, user.user_id).as_json()
    return QuotaResponse(success=True, **data)


@router.get(
    "/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "job events"},
        **responses(401, 429, 503),
    },
    response_class=EventSourceResponse,
)
async def events(request: Request, state: State, user: User) -> EventSourceResponse:
    """Server-Sent Events of the caller's own jobs: `ready` once listening, then `job` events
    {id, status, user_id, confidence}; comment pings keep the connection alive. At most
    `API_SSE_STREAMS_PER_USER` open streams per user (429 `TOO_MANY_STREAMS`); a stream ends
    with an `expired` event when its token's `exp` passes."""
    user_id = str(user.user_id)
    expires_at = float(user.claims["exp"])
    slots = state.limits.streams
    slot = await slots.acquire(user_id)
    if slot is None:
        raise ApiError(
            429,
            "TOO_MANY_STREAMS",
            f"at most {slots.per_user} open event streams per user",
            {"Retry-After": "5"},
        )

    async def stream() -> AsyncIterator[dict[str, str]]:
        SSE_SUBSCRIBERS.inc()
        try:
            async with state.hub.subscribe(user_id) as queue:
                yield {"event": "ready", "data": json.dumps({"userId": user_id})}
                renewed = time.monotonic()
                while (left := expires_at - time.time()) > 0:
                    if time.monotonic() - renewed >= STREAM_RENEW_SECONDS:
                        await slots.renew(user_id, slot)
                        renewed = time.monotonic()
                    try:
                        event = await asyncio.wait_for(queue.get(), min(left, STREAM_RENEW_SECONDS))
                    except TimeoutError:
                        continue
                    yield {"event": "job", "id": str(event.get("id")), "data": json.dumps(event)}
                expired = {"error": "the token expired; reconnect with a fresh one", "code": "TOKEN_EXPIRED"}
                yield {"event": "expired", "data": json.dumps(expired)}
        except EventsUnavailable as exc:
            yield {"event": "error", "data": json.dumps({"error": str(exc), "code": "EVENTS_UNAVAILABLE"})}
        finally:
            # Runs when the client leaves too: sse-starlette cancels the generator, and anyio
            # cancels every await after that unless shielded.
            SSE_SUBSCRIBERS.dec()
            with anyio.CancelScope(shield=True):
                await slots.release(user_id, slot)

    return EventSourceResponse(stream(), ping=state.settings.api_sse_ping_seconds, send_timeout=30)
