"""GET /dashboard: one self-contained page (api/dashboard.html: inline CSS, plain JS, SVG
charts, no external asset) that polls /api/queue/stats and /api/dashboard/data. Open, like
/metrics and /api/queue/stats: it shows numbers and failure reasons, never user data."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api import metrics as api_metrics
from api.state import State
from core import db, observability

router = APIRouter(tags=["ops"])
PUBLIC: dict[str, Any] = {"security": []}
FAILURES_SHOWN = 10


@cache
def page() -> str:
    return resources.files("api").joinpath("dashboard.html").read_text(encoding="utf-8")


@router.get("/dashboard", response_class=HTMLResponse, openapi_extra=PUBLIC)
def dashboard() -> HTMLResponse:
    """The live ops page (refreshes itself every few seconds)."""
    return HTMLResponse(page(), headers={"Cache-Control": "no-store"})


@router.get("/api/dashboard/data", openapi_extra=PUBLIC)
def dashboard_data(state: State) -> dict[str, Any]:
    """What the page draws besides /api/queue/stats: per-minute series of the last hour, recent
    failures with reasons, live workers, providers' calls and latency, menu jobs."""
    with db.transaction(state.engine) as conn:
        series = observability.series(conn, 3600)
        failures = observability.recent_failures(conn, FAILURES_SHOWN)
        menus = observability.live_numbers(conn).menu_jobs
    return {
        "series": series,
        "failures": failures,
        "fleet": observability.fleet(state.redis),
        "providers": api_metrics.provider_summary(state.settings.obs_metrics_dirs),
        "menus": menus,
    }
