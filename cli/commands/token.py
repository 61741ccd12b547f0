"""sous token: mint a development JWT (HS256, Supabase-shaped) for a user.

With --plan, the user's profile is set to that plan too (needs DATABASE_URL), so a developer
can try the quotas of each plan.
"""

from __future__ import annotations

import argparse
import json
import uuid

from core import db, quotas
from core.auth import mint_token
from core.errors import ConfigError
from core.quotas import PLANS
from core.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", type=uuid.UUID, default=None, help="user id (default: a new random one)")
    parser.add_argument("--plan", choices=sorted(PLANS), default=None, help="also set the user's plan")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires")
    parser.add_argument("--json", action="store_true", help='print {"token", "user_id", "expires_in"}')


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(needs=("database",) if args.plan else ())
    if not settings.supabase_jwt_secret:
        raise ConfigError(["SUPABASE_JWT_SECRET: required to mint tokens (JWKS keys are not ours to sign)"])
    user_id = args.user or uuid.uuid4()
    if args.plan:
        assert settings.database_url is not None
        engine = db.create_engine(settings.database_url, pool_size=1)
        try:
            with db.transaction(engine) as conn:
                quotas.set_plan(conn, user_id, args.plan)
        finally:
            engine.dispose()
    token = mint_token(settings.supabase_jwt_secret, user_id, ttl_seconds=args.ttl)
    if args.json:
        print(json.dumps({"token": token, "user_id": str(user_id), "expires_in": args.ttl}))
    else:
        print(token)
    return 0
