"""Who may read and act on the ops surface: the service key, a dashboard session, or (for
/metrics only) a client in METRICS_ALLOWED_NETWORKS.

The dashboard's session cookie never carries the key. It is `<expiry>.<nonce>.<mac>`, the MAC an
HMAC-SHA256 over expiry and nonce with a key derived from SERVICE_API_KEY, so every API process
and box verifies it without shared state, it lapses at its expiry (DASHBOARD_SESSION_SECONDS),
and rotating SERVICE_API_KEY signs every session out.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from api.state import AppState, AuthHeader, Caller, ServiceHeader, State, _bearer
from core.auth import service_key_matches

SESSION_COOKIE = "sous_ops_session"
_DERIVE = b"sous dashboard session v1"


def _mac_key(service_key: str) -> bytes:
    return hmac.new(service_key.encode(), _DERIVE, hashlib.sha256).digest()


def new_session(service_key: str, ttl_seconds: int, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    body = f"{expires}.{secrets.token_urlsafe(12)}"
    mac = hmac.new(_mac_key(service_key), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def session_valid(value: str | None, service_key: str | None, now: float | None = None) -> bool:
    if not value or not service_key:
        return False
    body, _, mac = value.rpartition(".")
    expires, _, nonce = body.partition(".")
    if not expires.isdigit() or not nonce:
        return False
    want = hmac.new(_mac_key(service_key), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, mac):
        return False
    return int(expires) > (now if now is not None else time.time())


def has_service_key(state: AppState, authorization: str | None, x_service_key: str | None) -> bool:
    key = state.settings.service_api_key
    return service_key_matches(x_service_key, key) or service_key_matches(_bearer(authorization), key)


def require_ops(
    request: Request, state: State, authorization: AuthHeader = None, x_service_key: ServiceHeader = None
) -> Caller:
    """The service key (X-Service-Key or Bearer), or a signed-in dashboard session."""
    if has_service_key(state, authorization, x_service_key):
        request.state.ops_via = "service-key"
        return Caller(None, True)
    if session_valid(request.cookies.get(SESSION_COOKIE), state.settings.service_api_key):
        request.state.ops_via = "session"
        return Caller(None, True)
    raise ApiError(
        401,
        "UNAUTHORIZED",
        "ops data needs the service API key (X-Service-Key) or a dashboard sign-in",
        {"WWW-Authenticate": "Bearer"},
    )


def client_in_networks(request: Request, state: AppState) -> bool:
    host = request.client.host if request.client else None
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in state.settings.metrics_networks)


def require_metrics_reader(
    request: Request, state: State, authorization: AuthHeader = None, x_service_key: ServiceHeader = None
) -> None:
    """/metrics: the service key, or a client address in METRICS_ALLOWED_NETWORKS."""
    if client_in_networks(request, state) or has_service_key(state, authorization, x_service_key):
        return
    raise ApiError(
        401,
        "UNAUTHORIZED",
        "/metrics needs the service API key or a client in METRICS_ALLOWED_NETWORKS",
        {"WWW-Authenticate": "Bearer"},
    )


def actor(request: Request) -> str:
    """Who acted, for the audit log: how they signed in and from where (never the key)."""
    how = getattr(request.state, "ops_via", "unknown")
    where = request.client.host if request.client else "unknown"
    return f"{how}@{where}"


Ops = Annotated[Caller, Depends(require_ops)]
MetricsReader = Annotated[None, Depends(require_metrics_reader)]
