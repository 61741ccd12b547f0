"""`sous token` and `sous api` configuration checks."""

from __future__ import annotations

import subprocess
import uuid

import sqlalchemy as sa

from core.auth import TokenVerifier
from tests.api_support import JWT_SECRET, ROOT, api_env

SOUS = str(ROOT / ".venv/bin/sous")


def test_token_mints_a_valid_jwt_and_sets_the_plan(
    database_url: str, redis_url: str, engine: sa.Engine
) -> None:
    user = uuid.uuid4()
    env = api_env(database_url, redis_url)
    out = subprocess.run(
        [SOUS, "token", "--user", str(user), "--plan", "premium", "--ttl", "600"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    principal = TokenVerifier(hs256_secret=JWT_SECRET).verify(out.stdout.strip())
    assert principal.user_id == user
    assert 0 < principal.claims["exp"] - principal.claims["iat"] <= 600
    with engine.begin() as conn:
        plan = conn.execute(
            sa.text("SELECT plan FROM profiles WHERE user_id = :u"), {"u": str(user)}
        ).scalar()
    assert plan == "premium"


def test_api_refuses_to_start_without_its_secrets(database_url: str, redis_url: str) -> None:
    env = api_env(database_url, redis_url, SERVICE_API_KEY="changeme", SUPABASE_JWT_SECRET="")
    proc = subprocess.run([SOUS, "api"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 78
    assert "SERVICE_API_KEY: placeholder value" in proc.stderr
    assert "SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL" in proc.stderr
