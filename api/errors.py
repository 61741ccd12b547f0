"""JSON errors `{"error", "code"}` for every failure, and the OpenAPI description of them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.auth import AuthError
from core.errors import DatabaseError, InvalidInput, SousError
from core.fetch import ImageTooLarge
from core.logging import log_text
from core.menu_jobs import (
    JobNotFound,
    JobNotRetryable,
    MaxRetriesExceeded,
    QuotaExceeded,
    RateLimited,
)

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    code: str
    details: list[dict[str, Any]] | None = None
    limit: str | None = None
    resetAt: str | None = None


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": message, "code": code, **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS.get(s, "error")} for s in statuses}


_DESCRIPTIONS = {
    400: "invalid input (INVALID_INPUT)",
    401: "missing or invalid credentials (UNAUTHORIZED)",
    403: "quota exhausted (QUOTA_EXCEEDED) or not allowed (FORBIDDEN)",
    404: "not found",
    409: "conflict",
    413: "request or image too large",
    415: "unsupported content type",
    429: "rate limited (RATE_LIMIT_EXCEEDED)",
    503: "a dependency is down",
}

_SOUS_STATUS: dict[type[SousError], int] = {
    AuthError: 401,
    JobNotFound: 404,
    MaxRetriesExceeded: 409,
    JobNotRetryable: 409,
    ImageTooLarge: 413,
    InvalidInput: 400,
    DatabaseError: 503,
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)

    @app.exception_handler(QuotaExceeded)
    async def _quota(request: Request, exc: QuotaExceeded) -> JSONResponse:
        return error_response(
            403, exc.code, str(exc), limit="monthly", resetAt=exc.state.month_resets_at.isoformat()
        )

    @app.exception_handler(RateLimited)
    async def _rate(request: Request, exc: RateLimited) -> JSONResponse:
        from datetime import UTC, datetime  # noqa: PLC0415

        wait = max(1, int((exc.reset_at - datetime.now(UTC)).total_seconds()) + 1)
        return error_response(
            429,
            exc.code,
            str(exc),
            {"Retry-After": str(wait)},
            limit="hourly",
            resetAt=exc.reset_at.isoformat(),
        )

    @app.exception_handler(SousError)
    async def _sous(request: Request, exc: SousError) -> JSONResponse:
        status = next((s for t, s in _SOUS_STATUS.items() if isinstance(exc, t)), 500)
        if status >= 500:
            log.error("request_failed", extra={"path": request.url.path, "error": log_text(exc)})
        code = "INVALID_INPUT" if isinstance(exc, InvalidInput) else exc.code
        if isinstance(exc, DatabaseError):
            return error_response(503, "DATABASE_UNAVAILABLE", "the database is unavailable; try again")
        return error_response(status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        return error_response(400, "INVALID_INPUT", "the request is not valid", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400 here is a body the framework could not parse (e.g. JSON nested too deep).
        codes = {400: "INVALID_INPUT", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE"}
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "HTTP_ERROR"),
            str(exc.detail),
            dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request_crashed", extra={"path": request.url.path})
        return error_response(500, "INTERNAL_ERROR", "internal error")
