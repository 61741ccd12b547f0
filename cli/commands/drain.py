"""sous drain: dispatch cycles in this process, chunks run inline (the nightly fallback).

Needs only Postgres. Stops when a cycle finds nothing to take, or after --max-cycles.
Honours DRY_RUN (answers go to ingredient_match_shadow only) and the ROLLOUT_STAGE defaults.
"""

from __future__ import annotations

import argparse
import json
import time

from cli.common import engine_for, load_settings
from model.ingredients import IngredientResolver
from worker.cycle import CycleRunner
from worker.fleet import InlineFleet
from worker.tasks import ChunkRunner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-cycles", type=int, default=None, help="default: QUEUE_MAX_CYCLES, else until empty"
    )
    parser.add_argument("--limit", type=int, default=None, help="rows per cycle (default: QUEUE_BATCH_LIMIT)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    with engine_for(settings, "sous-drain", pool_size=2) as engine:
        resolver = IngredientResolver.from_settings(settings)
        runner = CycleRunner(engine, settings, resolver, InlineFleet(ChunkRunner(engine, settings, resolver)))
        max_cycles = args.max_cycles or settings.queue_max_cycles
        totals = {"cycles": 0, "claimed": 0, "resolved": 0, "rejected": 0, "failed": 0, "model_queries": 0}
        while max_cycles is None or totals["cycles"] < max_cycles:
            report = runner.run("drain", limit=args.limit)
            totals["cycles"] += 1
            for key in ("claimed", "resolved", "rejected", "failed", "model_queries"):
                totals[key] += getattr(report, key)
            if report.claimed == 0:
                break
            if settings.queue_batch_delay_seconds:
                time.sleep(settings.queue_batch_delay_seconds)
        print(json.dumps({"dry_run": settings.dry_run, **totals}))
    return 0
