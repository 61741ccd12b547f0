"""sous work: run one RQ worker on the menu and ingredient queues (menus first: a user waits)."""

from __future__ import annotations

import argparse

from core.jobs import QUEUES
from core.logging import configure_logging
from worker.context import get_context
from worker.work import run_worker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queues",
        default=",".join(QUEUES),
        help="comma-separated RQ queues, in priority order (default: %(default)s)",
    )
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", default=None, help="worker name (default: sous-<BOX_ID>-<pid>)")
    parser.add_argument("--worker-ttl", type=int, default=60, help="seconds a dead worker still counts")


def run(args: argparse.Namespace) -> int:
    ctx = get_context()
    configure_logging(ctx.settings.log_level)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    run_worker(ctx, queues, burst=args.burst, name=args.name, worker_ttl=args.worker_ttl)
    return 0
