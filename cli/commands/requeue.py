"""sous requeue-expired: return rows whose lease expired to pending (or failed at max attempts)."""

from __future__ import annotations

import argparse
import json

from cli.common import engine_for, load_settings
from core import queue
from core.db import transaction


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int, default=10_000, help="at most this many rows (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.dry_run:
        print(json.dumps({"requeued": 0, "dry_run": True, "note": "DRY_RUN leaves queue rows unchanged"}))
        return 0
    with engine_for(settings, "sous-requeue") as engine, transaction(engine) as conn:
        n = queue.requeue_expired(conn, limit=args.limit, max_attempts=settings.queue_max_attempts)
    print(json.dumps({"requeued": n}))
    return 0
