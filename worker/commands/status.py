"""sous status: queue depth, oldest pending age, waits and throughput (5 min, 1 h, 24 h),
expired leases, live workers and the alert conditions, from the same code as /metrics,
/api/queue/stats and /readyz (core/observability.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import redis

from core import observability as obs
from core.alerts import Thresholds
from core.db import create_engine, transaction
from core.logging import configure_logging
from core.settings import Settings

WINDOW_SECONDS = obs.WINDOWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def collect(settings: Settings) -> dict[str, Any]:
    assert settings.database_url is not None
    client: redis.Redis[bytes] | None = (
        redis.Redis.from_url(settings.redis_url, socket_timeout=5) if settings.redis_url else None
    )
    engine = create_engine(settings.database_url, pool_size=1, app_name="sous-status")
    try:
        with transaction(engine) as conn:
            live = obs.live_numbers(conn)
            snap = obs.compute_snapshot(conn)
        fleet = obs.fleet(client) if client else {"live_workers": None, "error": "REDIS_URL not set"}
    finally:
        engine.dispose()
        if client:
            client.close()
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
            "rows_per_5min": round(finished * 300 / WINDOW_SECONDS[label], 1),
        }
    workers = fleet.get("live_workers")
    alerts = obs.current_alerts(
        live, snap, workers if isinstance(workers, int) else None, Thresholds.from_settings(settings)
    )
    return {
        "depth": depth,
        "depth_by_source": live.depth,
        "oldest_pending_s": live.oldest_pending_s,
        "expired_leases": live.expired_leases,
        "windows": windows,
        "menu_jobs": live.menu_jobs,
        "fleet": fleet,
        "alerts": [a.as_dict() for a in alerts],
        "dry_run": settings.dry_run,
    }


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(needs=("database",))
    configure_logging(settings.log_level)
    out = collect(settings)
    print(json.dumps(out, default=str) if args.json else as_text(out))
    return 0


def as_text(s: dict[str, Any]) -> str:
    depth = "  ".join(f"{k} {v}" for k, v in s["depth"].items())
    lines = [f"queue           {depth}", f"oldest pending  {_s(s['oldest_pending_s'])}"]
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
    if s["dry_run"]:
        lines.append("DRY_RUN: answers go to ingredient_match_shadow only")
    return "\n".join(lines)


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"
