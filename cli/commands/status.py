"""sous status: queue depth, oldest pending age, waits and throughput (5 min, 1 h, 24 h),
expired leases, live workers, the rollout stage the running fleet reports (its dispatchers'
latest cycles, not this shell's environment) and the alert conditions, from the same code as
/metrics, /api/queue/stats and /readyz (core/observability.py).

Exit status, for cron and monitoring: 0 all well, 2 when an alert fires or Postgres or Redis
is down (or the database is not migrated: run `sous migrate`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import redis

from cli.common import load_settings, one_line
from core import db, stage
from core import observability as obs
from core.alerts import Thresholds
from core.db import create_engine, transaction
from core.errors import DatabaseError
from core.settings import Settings

UNHEALTHY = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def collect(settings: Settings) -> dict[str, Any]:
    assert settings.database_url is not None
    checks: dict[str, str] = {}
    fleet: dict[str, Any] = {"live_workers": None, "error": "REDIS_URL not set"}
    if settings.redis_url:
        client: redis.Redis[bytes] = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )
        try:
            fleet = obs.fleet(client)
        finally:
            client.close()
        checks["redis"] = "down" if fleet["live_workers"] is None else "ok"
    engine = create_engine(settings.database_url, pool_size=1, app_name="sous-status")
    try:
        with transaction(engine) as conn:
            live = obs.live_numbers(conn)
            snap = obs.compute_snapshot(conn)
            fleet_stage = stage.fleet_stage(conn)
        checks["database"] = "ok"
    except DatabaseError as exc:
        # The operator is on the box: the driver's reason is theirs to see (one line), unlike
        # /readyz, which answers the network.
        missing = db.missing_table(exc)
        checks["database"] = "not migrated: run `sous migrate`" if missing else "down"
        reason = None if missing else one_line(str(exc))
        return {"checks": checks, "database_error": reason, "fleet": fleet, "alerts": [],
                "stage": stage.unknown().as_dict()}  # fmt: skip
    finally:
        engine.dispose()
    depth = {
        "pending": live.pending,
        "processing": live.processing,
        "resolved": 0,
        "rejected": 0,
        "failed": 0,
    }
    for t in snap.totals:
        depth[t["status"]] = depth.get(t["status"], 0) + t["n"]
    windows = {}
    for label, w in snap.windows.items():
        finished = w["resolved"] + w["rejected"] + w["failed"]
        windows[label] = {
            **w,
            "finished": finished,
            "rows_per_5min": round(finished * 300 / obs.WINDOWS[label], 1),
        }
    workers = fleet.get("live_workers")
    alerts = obs.current_alerts(
        live,
        snap,
        workers if isinstance(workers, int) else None,
        Thresholds.from_settings(settings),
        fleet_stage,
    )
    return {
        "checks": checks,
        "depth": depth,
        "depth_by_source": live.depth,
        "oldest_pending_s": live.oldest_pending_s,
        "expired_leases": live.expired_leases,
        "windows": windows,
        "menu_jobs": live.menu_jobs,
        "fleet": fleet,
        "stage": fleet_stage.as_dict(),
        "dry_run": fleet_stage.dry_run,
        "alerts": [a.as_dict() for a in alerts],
    }


def exit_code(s: dict[str, Any]) -> int:
    down = any(v != "ok" for v in s["checks"].values())
    return UNHEALTHY if down or s["alerts"] else 0


def run(args: argparse.Namespace) -> int:
    out = collect(load_settings())
    print(json.dumps(out, default=str) if args.json else as_text(out))
    if out.get("database_error") and not args.json:
        print(f"sous status: database: {out['database_error']}", file=sys.stderr)
    return exit_code(out)


def as_text(s: dict[str, Any]) -> str:
    checks = "  ".join(f"{k} {v}" for k, v in sorted(s["checks"].items()))
    if s["checks"].get("database") != "ok":
        return f"dependencies    {checks}"
    depth = "  ".join(f"{k} {v}" for k, v in s["depth"].items())
    lines = [f"dependencies    {checks}", f"stage           {stage_line(s['stage'])}"]
    lines += [f"queue           {depth}", f"oldest pending  {_s(s['oldest_pending_s'])}"]
    for label, w in s["windows"].items():
        lines.append(
            f"last {label:<4}       wait p50 {_s(w['wait_p50_s'])}  p95 {_s(w['wait_p95_s'])}  "
            f"finished {w['finished']} ({w['rows_per_5min']}/5 min)"
        )
    fleet = s["fleet"]
    workers = fleet.get("live_workers")
    lines.append(f"expired leases  {s['expired_leases']}")
    lines.append(f"live workers    {'unknown: ' + fleet['error'] if workers is None else workers}")
    lines.append("menu jobs       " + "  ".join(f"{k} {v}" for k, v in s["menu_jobs"].items()))
    firing = s["alerts"]
    lines.append("alerts          " + ("none" if not firing else "; ".join(a["message"] for a in firing)))
    return "\n".join(lines)


def stage_line(st: dict[str, Any]) -> str:
    if not st["known"]:
        return "unknown: no dispatcher cycle recorded in the last hour"
    parts = [
        str(st["rollout_stage"] or "ROLLOUT_STAGE unset"),
        "DRY RUN (answers to ingredient_match_shadow only)" if st["dry_run"] else "live",
        f"sources {st['queue_source']}, review {st['review_mode'] or '-'}",
        "providers " + " > ".join(st["providers"]),
    ]
    if st["answering"]:
        a = st["answering"]
        parts.append(f"answering {a['provider']} ({a['kind']}, {a['age_s']:.0f}s ago)")
    if st["mixed"]:
        parts.append("boxes disagree")
    return " · ".join(parts)


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"
