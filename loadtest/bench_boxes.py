"""make bench-boxes: rows per 5 minutes for one box against two boxes on one Postgres, SIMULATED.

Same run, same machine: step 1 offers a saturating load to one box (its own Redis, simulator
on the vllm-bf16 profile, N workers, dispatcher with BOX_ID=box-a); step 2 offers twice that to
two such boxes (box-a and box-b: separate Redis servers and simulators, the same N workers each)
claiming from the one queue. Each simulator stands in for one box's GPU. Steps and the
measurement are those of `make bench` (loadtest/bench.py): a steady offered rate, measured over
the last part of the step.

On a machine with few cores the two "boxes" share the same CPUs (and the one Postgres), so the
ratio understates what two real boxes, each with its own CPU and GPU, do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from core import migrate
from devtools.services import PostgresServer, RedisServer

from .bench import StepResult, print_table, run_step, vocabulary
from .bench_fleet import Fleet, reset, wait_workers
from .procs import box_env

SATURATING_PER_BOX = 4000  # offered rows/5 min per box: well above one bf16 box's ~2,400


def base_env(db_url: str) -> dict[str, str]:
    return box_env(
        db_url,
        LOCAL_LLM_ENABLED="true",
        LOCAL_LLM_MODEL="qwen3-8b-instruct",
        LOCAL_LLM_TIMEOUT_MS="150000",  # as in bench.py: a chunk of 4 takes ~35 s on this profile
        LOG_LEVEL="INFO",  # the appliance default (.env.example); issue 13
    )


def run_boxes(
    boxes: int, env: dict[str, str], redis_urls: list[str], args: argparse.Namespace, log_dir: Path
) -> StepResult:
    db_url = env["DATABASE_URL"]
    for url in redis_urls:
        reset(db_url, url)
    fleets: list[Fleet] = []
    try:
        for i in range(boxes):
            box_env = {**env, "REDIS_URL": redis_urls[i], "BOX_ID": f"box-{'ab'[i]}"}
            box_dir = log_dir / f"{boxes}-boxes-{'ab'[i]}"
            box_dir.mkdir(parents=True, exist_ok=True)
            fleets.append(Fleet(box_env, args.workers, box_dir))
        for i in range(boxes):
            wait_workers(redis_urls[i], args.workers)
        return run_step(
            mode=f"{boxes}-box",
            db_url=db_url,
            sim_base=fleets[0].sim_base,  # model requests column: box-a's simulator only
            offered=args.offered_per_box * boxes,
            seconds=args.step_seconds,
            warmup=args.warmup_seconds,
            rng=random.Random(20261122 + boxes),
            bases=vocabulary(),
        )
    finally:
        for fleet in fleets:
            fleet.kill()


def boxes_by_resolver(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT resolver, count(*) FROM ingredient_match_queue "
            "WHERE status IN ('resolved', 'rejected', 'failed') GROUP BY resolver"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--step-seconds", type=float, default=120.0)
    parser.add_argument("--warmup-seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=16, help="RQ workers per box")
    parser.add_argument("--offered-per-box", type=int, default=SATURATING_PER_BOX, help="rows/5 min")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    log_dir = Path(tempfile.mkdtemp(prefix="sous-bench-boxes-"))
    pg, redis_a, redis_b = PostgresServer(), RedisServer(), RedisServer()
    for server in (pg, redis_a, redis_b):
        server.start()
    results: list[StepResult] = []
    split: dict[str, int] = {}
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE sous_bench")
        db_url = pg.url_for("sous_bench")
        migrate.upgrade(db_url)
        env = {**base_env(db_url), "QUEUE_CHUNK_MAX_ITEMS": "4"}
        urls = [redis_a.url, redis_b.url]
        for boxes in (1, 2):
            result = run_boxes(boxes, env, urls, args, log_dir)
            results.append(result)
            print(
                json.dumps({"boxes": boxes, "finished_per_5min": round(result.finished_per_5min)}), flush=True
            )
        split = boxes_by_resolver(db_url)
    finally:
        redis_b.destroy()
        redis_a.destroy()
        pg.destroy()
    one, two = results
    print()
    print(
        f"SIMULATED (sous sim --profile vllm-bf16, one simulator per box), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} {os.cpu_count()} cores, "
        f"steps of {args.step_seconds:.0f}s measured after {args.warmup_seconds:.0f}s, "
        f"{args.workers} workers per box, offered {args.offered_per_box}/5 min per box"
    )
    print_table(results)
    ratio = two.finished_per_5min / max(one.finished_per_5min, 1)
    print(
        f"rows per 5 min: one box {one.finished_per_5min:.0f}, two boxes {two.finished_per_5min:.0f} "
        f"= {ratio:.2f}x; rows finished by resolver in the two-box step: {split}"
    )
    if (os.cpu_count() or 1) < 8:
        print("note: both boxes share this machine's CPUs, so the ratio understates real scale-out")
    if args.json:
        args.json.write_text(
            json.dumps([{**r.__dict__, "finished_per_5min": r.finished_per_5min} for r in results])
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
