"""make bench: the ingredient pipeline on the simulator (Strix Halo vLLM bf16 profile), SIMULATED.

Real Postgres, Redis, RQ workers and dispatcher (throwaway servers, `sous` processes); only the
model is simulated (`sous sim --profile vllm-bf16`, given CPU priority: it stands in for a GPU).
Each step offers rows at a steady rate for 120 s and measures the last 60 s (the first 60 s
let the first chunks, ~35 s each on this profile, come back). Per step: rows done per 5 min in
the window, sustained rows per 5 min (the offered rate when the pipeline kept up, else what it
finished: its capacity), p50/p95 wait (created -> processing start; a row still unclaimed at
the end counts with its age so far, so an overloaded step cannot hide its backlog), p95 time
to done, the share of rows the simulated model answered (not the rules fallback).

In the same run, the naive baseline (one request per row: chunks of 1, no dedupe, no cache) at
a saturating load, with the same 16-worker fleet and with one worker (one request at a time),
and the ratios. Each step starts with a fresh simulator, fleet and empty canonical cache.

Workload: names drawn from the rules vocabulary x 8 modifiers with a Zipf-like skew (scraped
names repeat a lot); the table prints the share of distinct names in each step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from core import migrate
from devtools.services import PostgresServer, RedisServer
from model.vocabulary import CANONICAL

from .bench_fleet import Fleet, reset, sim_requests, wait_workers
from .procs import box_env

PIPELINE_LOADS = [50, 500, 1000, 2000, 4000]  # offered rows per 5 min
SATURATING_LOAD = 4000  # several times what the naive baseline can take
MODIFIERS = ["", "fresh ", "chopped ", "large ", "organic ", "diced ", "minced ", "dried "]


@dataclass
class StepResult:
    mode: str
    offered_per_5min: int
    seconds: float
    inserted: int
    finished: int
    distinct_share: float
    p50_wait_s: float | None
    p95_wait_s: float | None
    p95_done_s: float | None
    backlog_end: int
    by_model: int  # finished rows the simulated model answered (not the rules fallback)
    model_requests: int

    @property
    def finished_per_5min(self) -> float:
        """Completions in the window; above the offered rate while a start-up backlog drains."""
        return self.finished * 300 / self.seconds

    @property
    def sustained_per_5min(self) -> float:
        """Kept up: the offered rate (window completions above it are a start-up backlog
        draining). Saturated: the completion rate, i.e. the capacity."""
        return (
            self.finished_per_5min if self.saturated else min(self.finished_per_5min, self.offered_per_5min)
        )

    @property
    def saturated(self) -> bool:
        """Backlog left over at the end of the window: completions measured the capacity."""
        return self.backlog_end > self.offered_per_5min / 5

    @property
    def holds(self) -> bool:
        return (
            self.p95_wait_s is not None
            and self.p95_wait_s < 60
            and self.finished_per_5min >= 0.9 * self.offered_per_5min
        )


def vocabulary() -> list[str]:
    return sorted(CANONICAL)


def draw_names(rng: random.Random, bases: list[str], n: int) -> list[str]:
    """Zipf-like: a few names are very common, most are rare."""
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(bases) * len(MODIFIERS))]
    population = [m + b for b in bases for m in MODIFIERS]
    rng.shuffle(population)
    return rng.choices(population, weights=weights, k=n)


def run_step(
    *,
    mode: str,
    db_url: str,
    sim_base: str,
    offered: int,
    seconds: float,
    warmup: float,
    rng: random.Random,
    bases: list[str],
) -> StepResult:
    """Offers `offered` rows/5 min for `seconds`; measures after `warmup` (steady state only)."""
    rate = offered / 300.0
    names = draw_names(rng, bases, int(rate * seconds) + 1)
    inserted = 0
    t0 = time.monotonic()
    req0: int | None = None
    with psycopg.connect(db_url, autocommit=True) as conn:
        window_start = None
        while (elapsed := time.monotonic() - t0) < seconds:
            if window_start is None and elapsed >= warmup:
                window_start = _db_now(conn)
                req0 = sim_requests(sim_base)
            due = min(len(names), int(rate * elapsed) + 1)
            if due > inserted:
                conn.execute(
                    "INSERT INTO ingredient_match_queue (raw_name, cleaned_name, source) "
                    "SELECT n, n, 'scraper' FROM unnest(%s::text[]) AS n",
                    (names[inserted:due],),
                )
                inserted = due
            time.sleep(0.2)
        window_end = _db_now(conn)
        assert window_start is not None and req0 is not None
        row = conn.execute(MEASURE_SQL, {"start": window_start, "end": window_end}).fetchone()
    assert row is not None
    return StepResult(
        mode=mode,
        offered_per_5min=offered,
        seconds=(window_end - window_start).total_seconds(),
        inserted=inserted,
        finished=int(row[0]),
        distinct_share=len(set(names[:inserted])) / max(inserted, 1),
        p50_wait_s=_float(row[1]),
        p95_wait_s=_float(row[2]),
        p95_done_s=_float(row[3]),
        backlog_end=int(row[4]),
        by_model=int(row[5]),
        model_requests=sim_requests(sim_base) - req0,
    )


# Rows finished in the window (any creation time); waits of rows created in the window, where
# a row not yet claimed (or not yet finished) counts with its age at the end of the window.
MEASURE_SQL = """
SELECT (SELECT count(*) FROM ingredient_match_queue
         WHERE status IN ('resolved', 'rejected', 'failed')
           AND updated_at BETWEEN %(start)s AND %(end)s),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
         least(coalesce(processing_started_at, %(end)s), %(end)s) - created_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM
         least(coalesce(processing_started_at, %(end)s), %(end)s) - created_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM
         CASE WHEN status IN ('resolved', 'rejected', 'failed') AND updated_at <= %(end)s
              THEN updated_at ELSE %(end)s END - created_at)),
       (SELECT count(*) FROM ingredient_match_queue WHERE status IN ('pending', 'processing')),
       (SELECT count(*) FROM ingredient_match_queue
         WHERE status IN ('resolved', 'rejected') AND provider = 'local'
           AND updated_at BETWEEN %(start)s AND %(end)s)
  FROM ingredient_match_queue
 WHERE created_at BETWEEN %(start)s AND %(end)s
"""


def _db_now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_table(results: list[StepResult]) -> None:
    head = (
        f"{'mode':<9} {'offered/5m':>10} {'done/5m':>8} {'sustained/5m':>12} {'p50 wait s':>10} "
        f"{'p95 wait s':>10} {'p95 done s':>10} {'backlog':>7} {'distinct':>8} {'model req':>9} "
        f"{'by model':>8} {'holds':>5} {'saturated':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.mode:<9} {r.offered_per_5min:>10} {r.finished_per_5min:>8.0f} {r.sustained_per_5min:>12.0f} "
            f"{fmt(r.p50_wait_s):>10} "
            f"{fmt(r.p95_wait_s):>10} {fmt(r.p95_done_s):>10} {r.backlog_end:>7} {r.distinct_share:>8.0%} "
            f"{r.model_requests:>9} {r.by_model / max(r.finished, 1):>8.0%} {'yes' if r.holds else 'no':>5} "
            f"{'yes' if r.saturated else 'no':>9}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--step-seconds", type=float, default=120.0, help="length of each load step")
    parser.add_argument(
        "--warmup-seconds", type=float, default=60.0, help="not measured, at each step's start"
    )
    parser.add_argument("--workers", type=int, default=16, help="RQ workers (the sim serves 16 streams)")
    parser.add_argument("--chunk-items", type=int, default=4, help="QUEUE_CHUNK_MAX_ITEMS of the pipeline")
    parser.add_argument("--loads", default=",".join(map(str, PIPELINE_LOADS)), help="offered rows/5 min")
    parser.add_argument("--baseline-load", type=int, default=SATURATING_LOAD)
    parser.add_argument(
        "--no-sequential-baseline",
        dest="sequential_baseline",
        action="store_false",
        help="skip the naive baseline with one worker (one request at a time, like a nightly script)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    log_dir = Path(tempfile.mkdtemp(prefix="sous-bench-"))
    pg, rd = PostgresServer(), RedisServer()
    pg.start()
    rd.start()
    fleet: Fleet | None = None
    results: list[StepResult] = []
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE sous_bench")
        db_url = pg.url_for("sous_bench")
        migrate.upgrade(db_url)
        env = box_env(
            db_url,
            REDIS_URL=rd.url,
            LOCAL_LLM_ENABLED="true",
            LOCAL_LLM_MODEL="qwen3-8b-instruct",
            # A chunk of 4 answers is ~25 output tokens (names only; ~180 before issue 14): ~4 s
            # at 16 streams of 163 ms/token; the warm-up must outlast it, or the first window
            # misses every completion.
            LOCAL_LLM_TIMEOUT_MS="150000",
            # Every line goes to the model (the honest load); skipping lines the rules know
            # would leave the simulated GPU nearly idle on this vocabulary-drawn workload.
            INGREDIENT_MODEL_SKIP_CONFIDENT="false",
            LOG_LEVEL="INFO",  # the appliance default (.env.example); issue 13
            BOX_ID="bench",
        )
        bases = vocabulary()
        rng = random.Random(20261122)
        loads = [int(x) for x in args.loads.split(",") if x.strip()]
        naive = {
            "QUEUE_CHUNK_MAX_ITEMS": "1",
            "QUEUE_DEDUPE_ENABLED": "false",
            "INGREDIENT_CACHE_ENABLED": "false",
        }
        w = args.workers
        steps = [("pipeline", {"QUEUE_CHUNK_MAX_ITEMS": str(args.chunk_items)}, load, w) for load in loads]
        steps.append(("naive", naive, args.baseline_load, w))  # the same fleet, one row per request
        if args.sequential_baseline:
            steps.append(("naive-seq", naive, args.baseline_load, 1))  # one request at a time
        for mode, extra, offered, workers in steps:
            # A fresh simulator and fleet per step: requests still in flight from the last step
            # would otherwise hold model slots and workers at the start of this one.
            reset(db_url, rd.url)
            fleet = Fleet({**env, **extra}, workers, log_dir)
            wait_workers(rd.url, workers)
            result = run_step(
                mode=mode,
                db_url=db_url,
                sim_base=fleet.sim_base,
                offered=offered,
                seconds=args.step_seconds,
                warmup=args.warmup_seconds,
                rng=rng,
                bases=bases,
            )
            results.append(result)
            progress = {
                "step": mode,
                "offered": offered,
                "finished_per_5min": round(result.finished_per_5min),
            }
            print(json.dumps({**progress, "p95_wait_s": result.p95_wait_s}), flush=True)
            fleet.kill()
            fleet = None
    finally:
        if fleet is not None:
            fleet.kill()
        rd.destroy()
        pg.destroy()
    report(results, args)
    return 0


def report(results: list[StepResult], args: argparse.Namespace) -> None:
    print()
    print(
        f"SIMULATED (sous sim --profile vllm-bf16), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()} {os.cpu_count()} cores, steps of {args.step_seconds:.0f}s measured after "
        f"{args.warmup_seconds:.0f}s, {args.workers} workers, pipeline chunks of {args.chunk_items}"
    )
    print_table(results)
    pipe = [r for r in results if r.mode == "pipeline"]
    naive = [r for r in results if r.mode.startswith("naive")]
    holding = [r.offered_per_5min for r in pipe if r.holds]
    print(
        f"highest offered load holding p95 wait < 60 s (and >= 90% finished): "
        f"{max(holding) if holding else 'none'} rows/5 min"
    )
    same = [r for r in pipe if r.offered_per_5min == args.baseline_load]
    for n in naive if same else []:
        p = same[0]
        bound = "" if p.saturated else " (pipeline not saturated: a lower bound)"
        ratio = p.sustained_per_5min / max(n.sustained_per_5min, 1)
        print(
            f"at {args.baseline_load} rows/5 min offered, sustained rows/5 min: pipeline "
            f"{p.sustained_per_5min:.0f} vs {n.mode} {n.sustained_per_5min:.0f} = {ratio:.1f}x{bound}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**r.__dict__, "finished_per_5min": r.finished_per_5min, "holds": r.holds} for r in results],
                indent=2,
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
