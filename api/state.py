"""Per-process state of the API (built in the app's lifespan, after gunicorn forks) and the
authentication dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis
import sqlalchemy as sa
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Scope

from api.errors import ApiError, error_response
from api.events import EventHub
from api.limiter import ApiLimits
from core.auth import AuthError, Principal, TokenVerifier, service_key_matches
from core.fetch import SafeFetcher
from core.observability import SnapshotStore
from core.settings import Settings
from model.chain import ProviderChain
from model.ingredients import IngredientResolver


@dataclass
class AppState:
    settings: Settings
    engine: sa.Engine
    redis: redis.Redis[bytes]
    verifier: TokenVerifier
    fetcher: SafeFetcher
    hub: EventHub
    limits: ApiLimits
    resolver: IngredientResolver | None = None  # built on first use (api/ingredients.py)
    snapshots: SnapshotStore | None = None  # built on first use (api/ops.py)
    chain: ProviderChain | None = None  # for /readyz's model check, built on first use

    def close(self) -> None:
        self.fetcher.close()
        if self.resolver is not None:
            self.resolver.close()
        if self.chain is not None:
            self.chain.close()
        self.engine.dispose()
        self.redis.close()


@dataclass(frozen=True)
class Caller:
    """Who is calling: a user (with a JWT) or the service (SERVICE_API_KEY)."""

    principal: Principal | None
    service: bool


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.sous
    return state


State = Annotated[AppState, Depends(get_state)]


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _authenticate(
    state: AppState,
    authorization: str | None,
    x_service_key: str | None,
    *,
    allow_user: bool,
    allow_service: bool,
) -> Caller:
    token = _bearer(authorization)
    if allow_service and (
        service_key_matches(x_service_key, state.settings.service_api_key)
        or service_key_matches(token, state.settings.service_api_key)
    ):
        return Caller(None, True)
    if allow_user and token:
        try:
            return Caller(state.verifier.verify(token), False)
        except AuthError as exc:
            raise ApiError(401, "UNAUTHORIZED", str(exc), {"WWW-Authenticate": "Bearer"}) from None
    wanted = " or ".join(
        w for w, ok in (("a bearer token", allow_user), ("the service API key", allow_service)) if ok
    )
    raise ApiError(401, "UNAUTHORIZED", f"authentication required: {wanted}", {"WWW-Authenticate": "Bearer"})


AuthHeader = Annotated[str | None, Header(include_in_schema=False)]
ServiceHeader = Annotated[str | None, Header(alias="X-Service-Key", include_in_schema=False)]


def require_user(state: State, authorization: AuthHeader = None) -> Principal:
    caller = _authenticate(state, authorization, None, allow_user=True, allow_service=False)
    assert caller.principal is not None
    return caller.principal


def require_service(
    state: State, authorization: AuthHeader = None, x_service_key: ServiceHeader = None
) -> Caller:
    return _authenticate(state, authorization, x_service_key, allow_user=False, allow_service=True)


def user_or_service(
    state: State, authorization: AuthHeader = None, x_service_key: ServiceHeader = None
) -> Caller:
    return _authenticate(state, authorization, x_service_key, allow_user=True, allow_service=True)


User = Annotated[Principal, Depends(require_user)]
Service = Annotated[Caller, Depends(require_service)]
UserOrService = Annotated[Caller, Depends(user_or_service)]


# Routes with a body and who may call them (user, service): checked before the body is read.
CREDENTIALS_BEFORE_BODY: dict[str, tuple[bool, bool]] = {
    "/api/extraction/submit": (True, False),
    "/api/ingredients/standardize": (True, True),
    "/api/ingredients/queue": (False, True),
}


async def refuse_before_body(scope: Scope) -> Response | None:
    """For api.limits.AuthenticateFirst: the 401 for a body route called without valid
    credentials, None otherwise."""
    allowed = CREDENTIALS_BEFORE_BODY.get(scope["path"])
    if allowed is None:
        return None
    state: AppState = scope["app"].state.sous
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        await run_in_threadpool(
            _authenticate,
            state,
            headers.get("authorization"),
            headers.get("x-service-key"),
            allow_user=allowed[0],
            allow_service=allowed[1],
        )
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    return None
