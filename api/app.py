"""The HTTP app. `create_app()` is what gunicorn loads ("api.app:create_app()"); settings,
engine, Redis and the event hub are built in the lifespan, inside each worker process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from api import dashboard, errors, extraction, ingredients, ops
from api.events import EventHub
from api.limiter import ApiLimits
from api.limits import AuthenticateFirst, BodySizeLimit
from api.state import AppState, refuse_before_body
from core.auth import TokenVerifier
from core.db import create_engine
from core.fetch import SafeFetcher, policy_allowing
from core.logging import configure_logging
from core.settings import Settings

log = logging.getLogger(__name__)

JSON_LIMIT = 1024 * 1024  # submit JSON, standardize
QUEUE_LIMIT = 8 * 1024 * 1024  # 5,000 rows of ingredient text
MULTIPART_OVERHEAD = 256 * 1024


def build_state(settings: Settings) -> AppState:
    assert settings.database_url is not None and settings.redis_url is not None
    sync_redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    return AppState(
        settings=settings,
        engine=create_engine(settings.database_url, pool_size=10, app_name="sous-api"),
        redis=sync_redis,
        verifier=TokenVerifier.from_settings(settings),
        fetcher=SafeFetcher(
            max_bytes=settings.menu_max_image_bytes,
            allow_private=settings.menu_allow_private_hosts,
            policy=policy_allowing(settings.fetch_allowed_networks),
            deadline_seconds=settings.menu_fetch_deadline_seconds,
            resolver_threads=min(settings.menu_fetch_per_process, 8),
        ),
        hub=EventHub(settings.database_listen_url or settings.database_url),  # LISTEN needs a session
        limits=ApiLimits(settings, sync_redis),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or Settings.load(needs=("database", "redis", "api"))
        if settings is None:
            configure_logging(s.log_level)
        state = build_state(s)
        app.state.sous = state
        log.info("api_started", extra={"allow_private_hosts": s.menu_allow_private_hosts})
        try:
            yield
        finally:
            await state.hub.close()
            await state.limits.aclose()
            state.close()

    # /docs (Swagger UI) and /redoc load their scripts from fastapi-offline's bundled copies
    # under /static-offline-docs, never from a CDN: the box may have no internet.
    app = FastAPIOffline(
        title="sous",
        version="1.0",
        summary="Menu extraction and ingredient matching on a local LLM appliance.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(extraction.router)
    app.include_router(ingredients.router)
    app.include_router(ops.router)
    app.include_router(dashboard.router)

    def limit_for(path: str) -> tuple[int, str]:
        max_image = (
            settings.menu_max_image_bytes if settings else None
        ) or app.state.sous.settings.menu_max_image_bytes
        if path == "/api/extraction/submit":
            return max_image + MULTIPART_OVERHEAD, "IMAGE_TOO_LARGE"
        if path == "/api/ingredients/queue":
            return QUEUE_LIMIT, "REQUEST_TOO_LARGE"
        return JSON_LIMIT, "REQUEST_TOO_LARGE"

    app.add_middleware(BodySizeLimit, limit_for=limit_for)
    app.add_middleware(AuthenticateFirst, refusal=refuse_before_body)  # outside BodySizeLimit
    app.add_middleware(ops.RequestMetrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with the security schemes declared and its 422 entries dropped
    (validation errors are 400 INVALID_INPUT here)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "serviceKey": {"type": "apiKey", "in": "header", "name": "X-Service-Key"},
    }
    schema["security"] = [{"bearerAuth": []}, {"serviceKey": []}]
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    schemas = schema.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
