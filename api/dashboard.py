"""GET /dashboard: one self-contained page (api/dashboard.html: inline CSS, plain JS, SVG
charts, no external asset) that polls /api/queue/stats and /api/dashboard/data, and lets a
signed-in operator retry, requeue or discard rows (each action in ops_audit_log).

Signing in: the page's form takes SERVICE_API_KEY and sets an HttpOnly, SameSite=Strict
session cookie (Secure over https) that carries a signed expiry, never the key (api/opsauth.py).
SameSite=Strict is also what keeps another site from posting the actions with that cookie.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from api import metrics as api_metrics
from api.errors import responses
from api.opsauth import SESSION_COOKIE, Ops, actor, has_service_key, new_session, session_valid
from api.state import AuthHeader, ServiceHeader, State
from core import db, observability, ops_actions, stage
from core.auth import service_key_matches

router = APIRouter(tags=["ops"])
PUBLIC: dict[str, Any] = {"security": []}
FAILURES_SHOWN = 10
NO_STORE = {"Cache-Control": "no-store"}


@cache
def _file(name: str) -> str:
    return resources.files("api").joinpath(name).read_text(encoding="utf-8")


def login_page(message: str = "") -> str:
    return _file("dashboard_login.html").replace("{{message}}", html.escape(message))


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/dashboard", response_class=HTMLResponse, openapi_extra=PUBLIC)
def dashboard(
    request: Request, state: State, authorization: AuthHeader = None, x_service_key: ServiceHeader = None
) -> HTMLResponse:
    """The live ops page (refreshes itself every few seconds); the sign-in form until signed in."""
    key = state.settings.service_api_key
    if session_valid(request.cookies.get(SESSION_COOKIE), key) or has_service_key(
        state, authorization, x_service_key
    ):
        return HTMLResponse(_file("dashboard.html"), headers=NO_STORE)
    return HTMLResponse(login_page(), headers=NO_STORE)


# The sign-in form's own routes: for a browser, not part of the API's schema.
@router.post("/dashboard/login", response_class=HTMLResponse, include_in_schema=False)
def login(request: Request, state: State, key: Annotated[str, Form()] = "") -> Response:
    """Form sign-in with SERVICE_API_KEY: sets the session cookie and returns to /dashboard."""
    s = state.settings
    if not service_key_matches(key, s.service_api_key):
        return HTMLResponse(login_page("That is not the service key."), status_code=401, headers=NO_STORE)
    assert s.service_api_key is not None
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new_session(s.service_api_key, s.dashboard_session_seconds),
        max_age=s.dashboard_session_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/dashboard/logout", include_in_schema=False)
def logout() -> RedirectResponse:
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/dashboard/data", responses=responses(401))
def dashboard_data(state: State, _caller: Ops) -> dict[str, Any]:
    """What the page draws besides /api/queue/stats: per-minute series of the last hour, recent
    failed and (apart) rejected rows with reasons, rows with an expired lease, live workers,
    providers' calls and latency, menu jobs, the stage in force and the latest operator actions."""
    with db.transaction(state.engine) as conn:
        series = observability.series(conn, 3600)
        failures = observability.recent_failures(conn, FAILURES_SHOWN)
        menus = observability.live_numbers(conn).menu_jobs
        stuck = ops_actions.stuck_rows(conn, FAILURES_SHOWN)
        audit = ops_actions.recent(conn, FAILURES_SHOWN)
        fleet_stage = stage.fleet_stage(conn)
    return {
        "series": series,
        "failures": failures,
        "stuck": stuck,
        "audit": audit,
        "stage": fleet_stage.as_dict(),
        "fleet": observability.fleet(state.redis),
        "providers": api_metrics.provider_summary(state.settings.obs_metrics_dirs),
        "menus": menus,
    }


class RowAction(BaseModel):
    ids: list[int | str] = Field(min_length=1, max_length=ops_actions.MAX_IDS)
    reason: str | None = Field(default=None, max_length=500)


@router.post("/api/ops/rows/{action}", responses=responses(400, 401))
def row_action(
    action: Literal["retry", "requeue", "discard"],
    body: RowAction,
    request: Request,
    state: State,
    _caller: Ops,
) -> dict[str, Any]:
    """An operator action on queue rows: `retry` failed rows (attempts reset), `requeue`
    processing rows with a stuck lease, `discard` pending/processing/failed rows (they become
    rejected). Rows in another status are returned as `skipped`. Every call is audited."""
    with db.transaction(state.engine) as conn:
        result = ops_actions.apply(conn, action, body.ids, actor(request), body.reason)
    return result.as_dict()
