"""Operational routes: health, readiness, metrics, queue stats.

/healthz and /readyz are open (a load balancer asks them; /readyz names failed checks, never a
driver's error text). /metrics answers the service key or a client in METRICS_ALLOWED_NETWORKS;
/api/queue/stats needs the service key or a dashboard session (api/opsauth.py)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics as api_metrics
from api.errors import ApiError, error_response, responses
from api.opsauth import MetricsReader, Ops
from api.state import AppState, State
from core import alerts, db, jobs, observability, stage
from core.logging import log_text
from model.chain import ProviderChain

log = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])

REQUESTS = Counter("sous_api_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("sous_api_request_seconds", "HTTP request latency", ["method", "route"])

_build_lock = threading.Lock()


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str  # ok, or alerting: ready, with alert conditions holding
    checks: dict[str, str]
    model: dict[str, str]
    stage: dict[str, Any]  # the rollout stage the fleet reports (core/stage.py)
    alerts: list[dict[str, Any]]


class QueueStats(BaseModel):
    ingredients: dict[str, int]  # rows by status (terminal ones from the shared snapshot)
    menus: dict[str, int]
    rq: dict[str, int]  # RQ queue lengths, -1 when Redis is down
    window: str
    depth: dict[str, dict[str, int]]
    oldest_pending_s: float | None
    expired_leases: int
    rows: dict[str, Any] | None  # finished/claimed in the window, wait p50/p95 (snapshot)
    throughput_per_min: float | None
    failure_rate: float | None
    runs: dict[str, Any]  # the dispatcher's cycles (queue_runs) in the window
    live_workers: int | None
    stage: dict[str, Any]
    alerts: list[dict[str, Any]]
    snapshot_age_s: float | None


PUBLIC: dict[str, Any] = {"security": []}


def snapshots(state: AppState) -> observability.SnapshotStore:
    with _build_lock:
        if state.snapshots is None:
            state.snapshots = observability.SnapshotStore(
                state.engine, state.redis, state.settings.obs_snapshot_seconds
            )
        return state.snapshots


def thresholds(state: AppState) -> alerts.Thresholds:
    return alerts.Thresholds.from_settings(state.settings)


@router.get("/healthz", response_model=Health, openapi_extra=PUBLIC)
def healthz() -> Health:
    """The process is up (no dependency is checked)."""
    return Health(status="ok")


def model_checks(state: AppState) -> tuple[str, dict[str, str]]:
    """The configured LLM providers, reachable or not. A cloud provider without its key is not
    configured, so it never fails readiness; with none configured the rules answer (ok)."""
    with _build_lock:
        if state.chain is None:
            state.chain = ProviderChain.from_settings(state.settings)
    chain = state.chain
    detail = {p.name: ("ok" if chain.is_available(p) else "unreachable") for p in chain.providers}
    if not detail:
        return "ok", {"rules": "ok (no LLM provider configured)"}
    if any(v == "ok" for v in detail.values()):
        return "ok", detail
    return "down", detail


@router.get("/readyz", response_model=Readiness, responses=responses(503), openapi_extra=PUBLIC)
def readyz(state: State) -> Readiness | JSONResponse:
    """Postgres, Redis and a model provider answer. Alert conditions are reported but do not
    make the process unready: a long queue is no reason to stop taking rows. A failed check
    reads "down" (or "not migrated"); the driver's error goes to the log, not to the caller."""
    checks: dict[str, str] = {}
    live = None
    fleet_stage = stage.unknown()
    try:
        with db.transaction(state.engine) as conn:
            live = observability.live_numbers(conn)
            fleet_stage = stage.fleet_stage(conn)
        checks["database"] = "ok"
    except Exception as exc:  # DatabaseError, or the pool's own timeout: either way not ready
        checks["database"] = "not migrated: run `sous migrate`" if db.missing_table(exc) else "down"
        log.warning("readyz_database", extra={"error": log_text(exc)})
    try:
        state.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = "down"
        log.warning("readyz_redis", extra={"error": log_text(exc)})
    checks["model"], model = model_checks(state)
    fired: list[dict[str, Any]] = []
    if live is not None:
        workers = observability.fleet(state.redis)["live_workers"] if checks["redis"] == "ok" else None
        snap = _snapshot(state)
        fired = [
            a.as_dict()
            for a in observability.current_alerts(live, snap, workers, thresholds(state), fleet_stage)
        ]
    # Open route: the stage, not the boxes' names.
    shown: dict[str, Any] = {k: v for k, v in fleet_stage.as_dict().items() if k != "boxes"}
    shown["boxes"] = len(fleet_stage.boxes)
    shown["first_reachable"] = next((n for n, v in model.items() if v == "ok"), None)
    if all(v == "ok" for v in checks.values()):
        return Readiness(
            status="alerting" if fired else "ok", checks=checks, model=model, stage=shown, alerts=fired
        )
    problems = "; ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
    return error_response(503, "NOT_READY", f"not ready: {problems}", checks=checks, model=model, stage=shown)


def _snapshot(state: AppState) -> observability.Snapshot | None:
    try:
        return snapshots(state).get()
    except Exception:
        return None


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **responses(401),
    },
)
def metrics(state: State, _reader: MetricsReader) -> Response:
    """Prometheus text format. The service key, or a client in METRICS_ALLOWED_NETWORKS."""
    collector = api_metrics.scrape(state.engine, snapshots(state), state.redis, thresholds(state))
    body = api_metrics.render(collector, state.settings.obs_metrics_dirs)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


Window = Annotated[str, Query(description="5m, 1h or 24h")]


@router.get(
    "/api/queue/stats", response_model=QueueStats, responses=responses(400, 401, 503), tags=["ingredients"]
)
def queue_stats(state: State, _caller: Ops, window: Window = "1h") -> QueueStats:
    """Depth, the window's throughput, waits and outcomes, the dispatcher's cycles, live workers,
    the stage in force and the alerts firing. The service key or a dashboard session."""
    seconds = observability.WINDOWS.get(window)
    if seconds is None:
        raise ApiError(400, "INVALID_INPUT", f"window must be one of {', '.join(observability.WINDOWS)}")
    with db.transaction(state.engine) as conn:
        live = observability.live_numbers(conn)
        runs = observability.run_window(conn, seconds)
        fleet_stage = stage.fleet_stage(conn)
    snap = _snapshot(state)
    fleet = observability.fleet(state.redis)
    counts = {s: sum(by_source.values()) for s, by_source in live.depth.items()}
    for t in snap.totals if snap else []:
        counts[t["status"]] = counts.get(t["status"], 0) + t["n"]
    rows = snap.windows.get(window) if snap else None
    rq = {
        name: (-1 if fleet["live_workers"] is None else int(fleet["queues"][name]["queued"]))
        for name in (jobs.INGREDIENT_QUEUE, jobs.MENU_QUEUE)
    }
    return QueueStats(
        ingredients={k: v for k, v in counts.items() if v},
        menus={k: v for k, v in live.menu_jobs.items() if v},
        rq=rq,
        window=window,
        depth=live.depth,
        oldest_pending_s=live.oldest_pending_s,
        expired_leases=live.expired_leases,
        rows=rows,
        throughput_per_min=None
        if rows is None
        else round((rows["resolved"] + rows["rejected"] + rows["failed"]) * 60 / seconds, 2),
        failure_rate=None if rows is None else alerts.failure_rate(rows["resolved"], rows["failed"]),
        runs=runs,
        live_workers=fleet["live_workers"],
        stage=fleet_stage.as_dict(),
        alerts=[
            a.as_dict()
            for a in observability.current_alerts(
                live, snap, fleet["live_workers"], thresholds(state), fleet_stage
            )
        ],
        snapshot_age_s=None if snap is None else round(snap.age(), 3),
    )


class RequestMetrics:
    """Counts requests by route template (not raw path: job ids would explode the labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
