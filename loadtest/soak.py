"""make soak / soak-short / chaos: Locust through the API, then the SLO gate.

Own stack (default): starts throwaway PostgreSQL and Redis, the simulator (or uses --llm-url),
and supervisord with the same programs as the appliance (dispatcher, workers, API).
A running box (--host URL, `make soak HOST=http://box:8000`): starts nothing; the credentials
(SERVICE_API_KEY, SUPABASE_JWT_SECRET) and the gate's DATABASE_URL come from the environment,
else from --env-file (the box's .env; DATABASE_URL defaults to its postgres service published
on 127.0.0.1:POSTGRES_PORT). The box must resolve rows: ROLLOUT_STAGE=primary.

Then, either way: installs the audit trigger (loadtest/audit.sql; on a box it is dropped again
afterwards), runs Locust headless at the set rate (CSV and HTML report in the output
directory), optionally breaks things (--chaos, own stack only), waits for the queue to drain,
and runs the SLO gate (JSON, charts), whose exit code it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from core import db
from core.db import create_engine, libpq_url
from devtools.stack import BIN, ROOT, LocalStack
from loadtest.chaos import Chaos
from loadtest.slo_gate import Thresholds, render_table, run_gate

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
    p.add_argument("--host", help="a running deployment's API (http://box:8000): no stack of its own")
    p.add_argument("--env-file", type=Path, help="with --host: the box's .env (the environment wins)")
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


def read_dotenv(path: Path) -> dict[str, str]:
    """NAME=value lines as compose reads them: `#` after whitespace starts a comment."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$", line)
        if m:
            value = re.split(r"\s+#", m[2], maxsplit=1)[0].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out.setdefault(m[1], value)
    return out


def box_credentials(env_file: Path | None) -> dict[str, str]:
    """What the run needs from a running box: credentials and the database, environment first."""
    file = read_dotenv(env_file) if env_file and env_file.is_file() else {}
    env = {k: os.environ.get(k) or file.get(k, "") for k in ("SERVICE_API_KEY", "SUPABASE_JWT_SECRET")}
    database_url = os.environ.get("DATABASE_URL") or file.get("DATABASE_URL", "")
    if not database_url and file.get("POSTGRES_PASSWORD"):
        port = file.get("POSTGRES_PORT") or "5432"
        database_url = f"postgresql://sous:{file['POSTGRES_PASSWORD']}@127.0.0.1:{port}/sous"
    env["DATABASE_URL"] = database_url
    missing = [k for k in ("SERVICE_API_KEY", "DATABASE_URL") if not env[k]]
    if missing:
        raise SystemExit(f"soak --host: set {' and '.join(missing)} (environment or --env-file)")
    return env


def run_locust(args: argparse.Namespace, host: str, env: dict[str, str], out: Path) -> int:
    locust_env = {
        **os.environ,
        **env,
        "SOUS_ROWS_PER_5MIN": str(args.rows_per_5min),
        "SOUS_BURST_ROWS": str(args.burst_rows),
        "SOUS_BURST_EVERY_S": str(args.burst_every),
        "SOUS_MENUS_PER_HOUR": str(args.menus_per_hour),
    }
    users = 1 + (args.burst_rows > 0) + (args.menus_per_hour > 0)
    locust = subprocess.run(
        [
            str(BIN / "locust"),
            *("-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless"),
            *("--users", str(users), "--spawn-rate", str(users)),
            *("--run-time", f"{int(args.duration)}s", "--host", host),
            *("--csv", str(out / "locust"), "--html", str(out / "locust.html")),
            *("--only-summary", "--stop-timeout", "10"),
        ],
        env=locust_env,
        check=False,
    )
    return locust.returncode


def gate_and_report(
    args: argparse.Namespace, database_url: str, since: datetime, out: Path, extra: dict[str, object]
) -> int:
    until = datetime.now(UTC)
    drain_timeout = args.drain_timeout or 2 * args.lease_seconds + 60
    drained_s = drain(database_url, since, drain_timeout)
    thresholds = Thresholds(args.min_rows_per_5min, args.max_p95_wait, args.max_failed_rate)
    if args.chaos:
        # Under chaos the gate asks for what must never break: no row lost, none resolved
        # twice, every row terminal. Latency and throughput are reported, not gated.
        thresholds = Thresholds(0, float("inf"), 1.0)
    report = run_gate(database_url, since, until, thresholds, out)
    # Against a box, the own-stack options describe nothing that ran.
    own_stack_only = {"workers", "profile", "llm_url", "chaos", "chaos_rounds", "keep", "env"}
    meta = {
        "args": {k: str(v) for k, v in vars(args).items() if not (args.host and k in own_stack_only)},
        "drain_seconds": round(drained_s, 1),
        **extra,
    }
    (out / "run.json").write_text(json.dumps(meta, indent=2, default=str))
    print(render_table(report))
    print(f"drained in {drained_s:.0f} s; results in {out} (locust.html, slo.json, charts)")
    return 0 if report.passed else 1


def install_audit(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(AUDIT_SQL.read_text())  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kind = "chaos-" if args.chaos else ("soak-box-" if args.host else "soak-")
    out = (args.out or ROOT / "loadtest" / "results" / (kind + stamp)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return run_against_box(args, out) if args.host else run_own_stack(args, out)


def run_against_box(args: argparse.Namespace, out: Path) -> int:
    if args.chaos or args.llm_url:
        raise SystemExit("soak --host: --chaos and --llm-url need a stack of its own")
    env = box_credentials(args.env_file)
    install_audit(env["DATABASE_URL"])
    print(f"soak against {args.host} (no stack started); audit in {libpq_url(env['DATABASE_URL'])}")
    since = datetime.now(UTC)
    try:
        locust_exit = run_locust(args, args.host.rstrip("/"), env, out)
        return gate_and_report(
            args, env["DATABASE_URL"], since, out, {"locust_exit": locust_exit, "host": args.host}
        )
    finally:
        # The trigger costs a write per finished row: a box keeps its table, not the trigger.
        with psycopg.connect(libpq_url(env["DATABASE_URL"]), autocommit=True) as conn:
            conn.execute("DROP TRIGGER IF EXISTS soak_record_transition ON ingredient_match_queue")


def run_own_stack(args: argparse.Namespace, out: Path) -> int:
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
    install_audit(env["DATABASE_URL"])
    stack.start(env)
    print(
        f"stack up: api :{env['API_PORT']}  model {env['LOCAL_LLM_BASE_URL']}  state {stack.state}",
        flush=True,
    )
    chaos = Chaos(stack, env, duration_s=args.duration, rounds=args.chaos_rounds) if args.chaos else None
    since = datetime.now(UTC)
    try:
        if chaos:
            chaos.start()
        locust_exit = run_locust(args, f"http://127.0.0.1:{env['API_PORT']}", env, out)
        if chaos:
            chaos.stop()
            print("chaos events: " + ", ".join(f"{e.kind}@{e.at_s:.0f}s" for e in chaos.events))
        extra = {
            "locust_exit": locust_exit,
            "chaos_events": [vars(e) for e in chaos.events] if chaos else [],
            "simulated": not args.llm_url,
        }
        return gate_and_report(args, env["DATABASE_URL"], since, out, extra)
    finally:
        if not args.keep:
            stack.stop()
            stack.stop_services()


if __name__ == "__main__":
    sys.exit(main())
