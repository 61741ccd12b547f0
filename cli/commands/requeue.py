"""sous requeue-expired: return rows whose lease expired to pending (or failed at max attempts)."""

from __future__ import annotations

import argparse
import json

from core import queue
from core.db import create_engine, transaction
from core.logging import configure_logging
from core.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int, default=10_000, help="at most this many rows (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(needs=("database",))
    configure_logging(settings.log_level)
    assert settings.database_url is not None
    if settings.dry_run:
        print(json.dumps({"requeued": 0, "dry_run": True, "note": "DRY_RUN leaves queue rows unchanged"}))
        return 0
    engine = create_engine(settings.database_url, pool_size=1, app_name="sous-requeue")
    try:
        with transaction(engine) as conn:
            n = queue.requeue_expired(conn, limit=args.limit, max_attempts=settings.queue_max_attempts)
    finally:
        engine.dispose()
    print(json.dumps({"requeued": n}))
    return 0
