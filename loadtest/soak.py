"""make soak / soak-short / chaos: the whole stack on this host under Locust, then the SLO gate.

Starts throwaway PostgreSQL and Redis, the simulator (or uses --llm-url), and supervisord with
the same programs as the appliance (dispatcher, workers, API); installs the audit trigger;
runs Locust headless at the set rate (CSV in the output directory); optionally breaks things
(--chaos); waits for the queue to drain; and runs the SLO gate, whose exit code it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from core import db
from core.db import create_engine, libpq_url
from loadtest.chaos import Chaos
from loadtest.slo_gate import Thresholds, render_table, run_gate
from worker.devstack import BIN, ROOT, LocalStack

AUDIT_SQL = Path(__file__).with_name("audit.sql")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=1800, help="seconds of load (default 30 min)")
    p.add_argument("--rows-per-5min", type=float, default=60, help="offered ingest rate")
    p.add_argument("--burst-rows", type=int, default=0)
    p.add_argument("--burst-every", type=float, default=120)
    p.add_argument("--menus-per-hour", type=float, default=0)
    p.add_argument("--workers", type=int, default=2, help="WORKER_COUNT")
    p.add_argument("--profile", default="vllm-bf16", help="simulator profile")
    p.add_argument("--llm-url", help="an OpenAI-compatible server to use instead of the simulator")
    p.add_argument("--lease-seconds", type=int, default=180)
    p.add_argument("--chaos", action="store_true", help="kill and restart parts during the run")
    p.add_argument("--chaos-rounds", type=int, default=1, help="times each chaos event happens")
    p.add_argument("--drain-timeout", type=float, default=None, help="default: 2 leases + 60 s")
    p.add_argument("--min-rows-per-5min", type=float, default=Thresholds.min_rows_per_5min)
    p.add_argument("--max-p95-wait", type=float, default=Thresholds.max_p95_wait_s)
    p.add_argument("--max-failed-rate", type=float, default=Thresholds.max_failed_rate)
    p.add_argument(
        "--out", type=Path, default=None, help="results directory (default loadtest/results/<stamp>)"
    )
    p.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for every program")
    return p.parse_args(argv)


def drain(database_url: str, since: datetime, timeout: float) -> float:
    """Waits until no row created since `since` is pending or processing; returns the seconds."""
    engine = create_engine(database_url, pool_size=1)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            with engine.connect() as conn:
                live = db.fetch_value(conn, "slo_live_count", {"since": since}, package="loadtest")
                if int(live or 0) == 0:
                    break
            time.sleep(2)
    finally:
        engine.dispose()
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (
        args.out or ROOT / "loadtest" / "results" / (("chaos-" if args.chaos else "soak-") + stamp)
    ).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="sous-soak-")), use_env_services=False)
    overrides = {
        "WORKER_COUNT": str(args.workers),
        "SOUS_SIM_PROFILE": args.profile,
        "QUEUE_LEASE_SECONDS": str(args.lease_seconds),
        "ROLLOUT_STAGE": "primary",
        "QUEUE_REVIEW_MODE": "any",
        "API_PORT": "",
        **({"LOCAL_LLM_BASE_URL": args.llm_url} if args.llm_url else {}),
        **dict(kv.split("=", 1) for kv in args.env),
    }
    overrides = {k: v for k, v in overrides.items() if v}
    services = stack.start_services()
    env = stack.stack_env(services, overrides)
    with psycopg.connect(libpq_url(env["DATABASE_URL"]), autocommit=True) as conn:
        conn.execute(AUDIT_SQL.read_text())  # type: ignore[arg-type]
    stack.start(env)
    print(
        f"stack up: api :{env['API_PORT']}  model {env['LOCAL_LLM_BASE_URL']}  state {stack.state}",
        flush=True,
    )
    chaos = Chaos(stack, env, duration_s=args.duration, rounds=args.chaos_rounds) if args.chaos else None
    since = datetime.now(UTC)
    locust_env = {
        **os.environ,
        **env,
        "SOUS_ROWS_PER_5MIN": str(args.rows_per_5min),
        "SOUS_BURST_ROWS": str(args.burst_rows),
        "SOUS_BURST_EVERY_S": str(args.burst_every),
        "SOUS_MENUS_PER_HOUR": str(args.menus_per_hour),
    }
    users = 1 + (args.burst_rows > 0) + (args.menus_per_hour > 0)
    try:
        if chaos:
            chaos.start()
        locust = subprocess.run(
            [
                str(BIN / "locust"),
                "-f",
                str(ROOT / "loadtest" / "locustfile.py"),
                "--headless",
                "--users",
                str(users),
                "--spawn-rate",
                str(users),
                "--run-time",
                f"{int(args.duration)}s",
                "--host",
                f"http://127.0.0.1:{env['API_PORT']}",
                "--csv",
                str(out / "locust"),
                "--only-summary",
                "--stop-timeout",
                "10",
            ],
            env=locust_env,
            check=False,
        )
        until = datetime.now(UTC)
        if chaos:
            chaos.stop()
        drain_timeout = args.drain_timeout or 2 * args.lease_seconds + 60
        drained_s = drain(env["DATABASE_URL"], since, drain_timeout)
        thresholds = Thresholds(args.min_rows_per_5min, args.max_p95_wait, args.max_failed_rate)
        if args.chaos:
            # Under chaos the gate asks for what must never break: no row lost, none resolved
            # twice, every row terminal. Latency and throughput are reported, not gated.
            thresholds = Thresholds(0, float("inf"), 1.0)
        report = run_gate(env["DATABASE_URL"], since, until, thresholds, out)
        meta = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "locust_exit": locust.returncode,
            "drain_seconds": round(drained_s, 1),
            "chaos_events": [vars(e) for e in chaos.events] if chaos else [],
            "simulated": not args.llm_url,
        }
        (out / "run.json").write_text(json.dumps(meta, indent=2, default=str))
        print(render_table(report))
        if chaos:
            print("chaos events: " + ", ".join(f"{e.kind}@{e.at_s:.0f}s" for e in chaos.events))
        print(f"drained in {drained_s:.0f} s; results in {out}")
        return 0 if report.passed else 1
    finally:
        if not args.keep:
            stack.stop()
            stack.stop_services()


if __name__ == "__main__":
    sys.exit(main())
