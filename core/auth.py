"""Supabase JWT verification and development tokens.

A verifier accepts exactly one family of algorithms, chosen by configuration, never by the
token: HS256 with SUPABASE_JWT_SECRET, or the asymmetric keys published at SUPABASE_JWKS_URL
(RS256/ES256/EdDSA). So `alg: none` and algorithm confusion (an HS256 token signed with a
public key) are refused by construction. Audience "authenticated", expiry and a subject that
is a UUID are required.
"""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from core.errors import SousError
from core.settings import Settings

AUDIENCE = "authenticated"
ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"]
REQUIRED_CLAIMS = ["exp", "sub", "aud"]


class AuthError(SousError):
    """The request carries no valid credentials (HTTP 401)."""

    code = "UNAUTHORIZED"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: str
    claims: dict[str, Any]


class TokenVerifier:
    def __init__(self, *, hs256_secret: str | None = None, jwks_url: str | None = None) -> None:
        if not hs256_secret and not jwks_url:
            raise ValueError("a JWT secret or a JWKS URL is required")
        self._secret = hs256_secret
        # PyJWKClient caches the key set and refetches it when a token names an unknown kid.
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5) if jwks_url else None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        return cls(hs256_secret=settings.supabase_jwt_secret, jwks_url=settings.supabase_jwks_url)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        alg = header.get("alg")
        options: Any = {"require": REQUIRED_CLAIMS}
        try:
            if alg == "HS256" and self._secret:
                claims = jwt.decode(
                    token, self._secret, algorithms=["HS256"], audience=AUDIENCE, options=options
                )
            elif alg in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token)
                claims = jwt.decode(
                    token, key, algorithms=ASYMMETRIC_ALGORITHMS, audience=AUDIENCE, options=options
                )
            else:
                raise AuthError(f"token algorithm {alg!r} is not accepted")
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"signing key not found: {exc}") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise AuthError("token subject is not a user id") from None
        return Principal(user_id=user_id, role=str(claims.get("role", "authenticated")), claims=claims)


def service_key_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of the SERVICE_API_KEY."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def mint_token(
    secret: str,
    user_id: uuid.UUID | str,
    *,
    ttl_seconds: int = 3600,
    extra: dict[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token shaped like Supabase's, for development and tests."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "aud": AUDIENCE,
        "role": "authenticated",
        "iat": issued,
        "exp": issued + ttl_seconds,
        **(extra or {}),
    }
    return jwt.encode(claims, secret, algorithm="HS256")
