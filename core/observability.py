"""The numbers of the ingredient queue, computed from Postgres (the truth) and RQ (live workers).

Two kinds, by cost:
- live numbers (depth of pending/processing rows, oldest pending, expired leases, menu jobs):
  cheap partial-index reads, computed on every request;
- the snapshot (terminal rows by outcome/source/provider, per-window outcomes and waits, the
  1 h wait histogram, cache totals): one or two table scans, so it is computed at most once
  per OBS_SNAPSHOT_SECONDS for the whole fleet and shared through Redis. Every API process
  on every box then serves the same snapshot, so counters never step backwards between
  scrapes that land on different processes.

/metrics, /api/queue/stats, /readyz, the dashboard and `sous status --json` read these.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import sqlalchemy as sa
from rq import Queue, Worker
from rq.registry import StartedJobRegistry

from core import alerts, db, jobs
from core.logging import log_text
from core.queue import row_id
from core.settings import Settings
from core.stage import Stage, fleet_stage

log = logging.getLogger(__name__)

# Queue-wait histogram bounds (seconds): from "near real time" to the 5 min SLO and beyond.
WAIT_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
WINDOWS = {"5m": 300, "1h": 3600, "24h": 86400}
HISTOGRAM_WINDOW = "1h"  # the window of the wait histogram (/metrics)
RQ_QUEUES = (jobs.INGREDIENT_QUEUE, jobs.MENU_QUEUE)
SNAPSHOT_KEY = "sous:obs:snapshot"
SNAPSHOT_LOCK = "sous:obs:snapshot:lock"
LOCK_SECONDS = 120  # a refresher that dies frees the lock after this


@dataclass
class Live:
    depth: dict[str, dict[str, int]]  # status -> source -> rows (pending and processing only)
    oldest_pending_s: float | None
    expired_leases: int
    menu_jobs: dict[str, int]
    # "source:review_mode" -> age of the oldest pending row that mode would claim (core/stage.py)
    oldest_by_scope: dict[str, float | None] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return sum(self.depth.get("pending", {}).values())

    @property
    def processing(self) -> int:
        return sum(self.depth.get("processing", {}).values())


def live_numbers(conn: sa.Connection) -> Live:
    depth: dict[str, dict[str, int]] = {"pending": {}, "processing": {}}
    for r in db.fetch_all(conn, "obs_live_depth"):
        depth[r["status"]][r["source"]] = int(r["n"])
    by_scope = {
        f"{r['source']}:{r['mode']}": None if r["age_s"] is None else round(float(r["age_s"]), 3)
        for r in db.fetch_all(conn, "obs_oldest_pending_by_scope")
    }
    ages = [a for k, a in by_scope.items() if k.endswith(":any") and a is not None]
    oldest = max(ages) if ages else None
    menus = {r["status"]: int(r["n"]) for r in db.fetch_all(conn, "menu_count_by_status")}
    for status in ("queued", "processing", "completed", "failed"):
        menus.setdefault(status, 0)
    return Live(
        depth=depth,
        oldest_pending_s=None if oldest is None else round(float(oldest), 3),
        expired_leases=int(db.fetch_value(conn, "status_expired_leases") or 0),
        menu_jobs=menus,
        oldest_by_scope=by_scope,
    )


@dataclass
class Snapshot:
    computed_at: float  # unix time
    duration_ms: float
    totals: list[dict[str, Any]]  # {status, source, provider, n} of terminal rows
    windows: dict[str, dict[str, Any]]  # label -> resolved, rejected, failed, claimed, wait_p50_s, wait_p95_s
    wait_buckets: list[int]  # 1 h window, cumulative counts per WAIT_BUCKETS bound, then +Inf
    wait_sum_s: float
    cache: dict[str, int] = field(default_factory=dict)  # entries, hits

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.computed_at

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Snapshot:
        return cls(**json.loads(raw))


def compute_snapshot(conn: sa.Connection) -> Snapshot:
    started = time.perf_counter()
    totals = [
        {"status": r["status"], "source": r["source"], "provider": r["provider"], "n": int(r["n"])}
        for r in db.fetch_all(conn, "obs_totals")
    ]
    bounds = "{" + ",".join(str(b) for b in WAIT_BUCKETS) + "}"
    windows: dict[str, dict[str, Any]] = {}
    buckets: dict[str, int] = {}
    wait_sum = 0.0
    params = {
        "bounds": bounds,
        "windows": json.dumps(WINDOWS),
        "longest_seconds": max(WINDOWS.values()),
        "histogram_seconds": WINDOWS[HISTOGRAM_WINDOW],
    }
    for r in db.fetch_all(conn, "obs_windows", params):
        windows[r["label"]] = {
            k: (int(r[k]) if k not in ("wait_p50_s", "wait_p95_s") else _num(r[k]))
            for k in ("resolved", "rejected", "failed", "claimed", "wait_p50_s", "wait_p95_s")
        }
        buckets = {str(k): int(v) for k, v in (r["wait_buckets"] or {}).items()}
        wait_sum = float(r["wait_sum_s"] or 0.0)
    cache = db.fetch_one(conn, "obs_cache") or {}
    return Snapshot(
        computed_at=time.time(),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        totals=totals,
        windows=windows,
        wait_buckets=cumulative_buckets(buckets),
        wait_sum_s=round(wait_sum, 3),
        cache={"entries": int(cache.get("entries") or 0), "hits": int(cache.get("hits") or 0)},
    )


def cumulative_buckets(by_index: dict[str, int]) -> list[int]:
    """width_bucket's index i (0 below the first bound, len(bounds) above the last) ->
    Prometheus cumulative counts per bound plus +Inf. A wait of exactly a bound lands one
    bucket up (width_bucket's ranges are [lo, hi)); with waits in float seconds that is noise."""
    counts = [0] * (len(WAIT_BUCKETS) + 1)
    for key, n in by_index.items():
        counts[min(int(key), len(WAIT_BUCKETS))] += n
    running, out = 0, []
    for n in counts:
        running += n
        out.append(running)
    return out


class SnapshotStore:
    """Serves the snapshot; refreshes it when older than `max_age`, once for the fleet.

    The refresher is whoever takes the Redis lock (SET NX); it recomputes in a background
    thread while requests keep being served the previous snapshot. Only when there is no
    snapshot at all does a request compute it inline. With Redis down, each process keeps
    its own copy (degraded: two processes may then disagree by a few seconds of rows).
    """

    def __init__(self, engine: sa.Engine, client: redis.Redis[bytes] | None, max_age: float) -> None:
        self.engine = engine
        self.redis = client
        self.max_age = max_age
        self._local: Snapshot | None = None
        self._local_lock = threading.Lock()

    def get(self) -> Snapshot | None:
        snap = self._read()
        if snap is None:
            if self._lock():
                return self._refresh()
            return self._local
        if snap.age() > self.max_age and self._lock():
            threading.Thread(target=self._refresh, name="obs-snapshot", daemon=True).start()
        return snap

    def _read(self) -> Snapshot | None:
        if self.redis is not None:
            try:
                raw = self.redis.get(SNAPSHOT_KEY)
                if raw:
                    self._local = Snapshot.from_json(raw)
                    return self._local
            except redis.RedisError:
                pass
        return self._local

    def _lock(self) -> bool:
        if self.redis is not None:
            try:
                return bool(self.redis.set(SNAPSHOT_LOCK, b"1", nx=True, ex=LOCK_SECONDS))
            except redis.RedisError:
                pass
        return self._local_lock.acquire(blocking=False)

    def _unlock(self) -> None:
        if self._local_lock.locked():
            self._local_lock.release()
        if self.redis is not None:
            with contextlib.suppress(redis.RedisError):
                self.redis.delete(SNAPSHOT_LOCK)

    def _refresh(self) -> Snapshot | None:
        try:
            with db.transaction(self.engine) as conn:
                snap = compute_snapshot(conn)
        except Exception:
            log.exception("obs_snapshot_error")
            return self._local
        finally:
            self._unlock()
        self._local = snap
        if self.redis is not None:
            try:
                self.redis.set(SNAPSHOT_KEY, snap.to_json(), ex=int(max(self.max_age * 20, 600)))
            except redis.RedisError:
                log.warning("obs_snapshot_not_shared", exc_info=True)
        log.info("obs_snapshot", extra={"duration_ms": snap.duration_ms})
        return snap


def fleet(client: redis.Redis[bytes]) -> dict[str, Any]:
    """Live RQ workers (a worker counts until its heartbeat TTL lapses) and queue lengths."""
    try:
        workers = Worker.all(connection=client)
        queues = {}
        for name in RQ_QUEUES:
            q = Queue(name, connection=client)
            queues[name] = {"queued": q.count, "started": StartedJobRegistry(queue=q).count}
        listed = [
            {
                "name": w.name,
                "state": str(w.get_state()),
                "queues": w.queue_names(),
                "current_job": w.get_current_job_id(),
                "last_heartbeat": w.last_heartbeat.isoformat() if w.last_heartbeat else None,
                "ok_jobs": w.successful_job_count,
                "failed_jobs": w.failed_job_count,
            }
            for w in workers
        ]
    except redis.RedisError as exc:
        return {"live_workers": None, "workers": [], "queues": {}, "error": f"redis: {log_text(exc)}"}
    return {"live_workers": len(listed), "workers": sorted(listed, key=lambda w: w["name"]), "queues": queues}


def run_window(conn: sa.Connection, seconds: int) -> dict[str, Any]:
    """The dispatcher's cycle summaries (queue_runs) over the window."""
    r = db.fetch_one(conn, "obs_run_window", {"seconds": seconds}) or {}
    return {k: (_num(v) if k.endswith("_ms") else int(v or 0)) for k, v in r.items()}


def series(conn: sa.Connection, seconds: int = 3600) -> list[dict[str, Any]]:
    """Per minute: cycles, rows claimed, rows resolved, depth after the last cycle, worst p95 lag."""
    minutes: dict[str, dict[str, Any]] = {}
    for r in db.fetch_all(conn, "obs_run_series", {"seconds": seconds}):
        minutes[r["minute"].isoformat()] = {
            "cycles": int(r["cycles"]),
            "claimed": int(r["claimed"]),
            "pending_after": None if r["pending_after"] is None else int(r["pending_after"]),
            "lag_p95_ms": _num(r["lag_p95_ms"]),
            "resolved": 0,
        }
    for r in db.fetch_all(conn, "obs_resolved_series", {"seconds": seconds}):
        minute = minutes.setdefault(
            r["minute"].isoformat(),
            {"cycles": 0, "claimed": 0, "pending_after": None, "lag_p95_ms": None, "resolved": 0},
        )
        minute["resolved"] = int(r["resolved"])
    return [{"minute": k, **v} for k, v in sorted(minutes.items())]


def recent_failures(conn: sa.Connection, limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Failed rows and rejected rows apart: a rejection is known-bad input, not a failure."""
    return {
        "ingredients": _recent_rows(conn, "failed", limit),
        "rejected": _recent_rows(conn, "rejected", limit),
        "menus": _recent_menu_failures(conn, limit),
    }


def _recent_rows(conn: sa.Connection, status: str, limit: int) -> list[dict[str, Any]]:
    return [
        {
            "id": row_id(r["id"]),
            "status": r["status"],
            "source": r["source"],
            "name": r["cleaned_name"],
            "reason": r["last_error"],
            "attempts": int(r["attempt_count"]),
            "provider": r["provider"],
            "at": r["updated_at"].isoformat(),
        }
        for r in db.fetch_all(conn, "obs_recent_failures", {"limit": limit, "status": status})
    ]


def _recent_menu_failures(conn: sa.Connection, limit: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(r["id"]),
            "reason": r["error_message"],
            "retries": int(r["retry_count"] or 0),
            "at": r["completed_at"].isoformat() if r["completed_at"] else None,
        }
        for r in db.fetch_all(conn, "obs_recent_menu_failures", {"limit": limit})
    ]


def in_scope_oldest(live: Live, fleet_stage: Stage | None) -> float | None:
    """The oldest pending row sous is meant to take under the fleet's stage: none in a dry run
    (rows stay pending on purpose), only QUEUE_SOURCE's rows in stage partial, only the rows
    QUEUE_REVIEW_MODE claims."""
    scopes = fleet_stage.processed_scopes() if fleet_stage is not None else None
    if scopes is None:
        return live.oldest_pending_s
    ages = [a for k, a in live.oldest_by_scope.items() if k in scopes and a is not None]
    return max(ages) if ages else None


def current_alerts(
    live: Live,
    snapshot: Snapshot | None,
    live_workers: int | None,
    t: alerts.Thresholds,
    fleet_stage: Stage | None = None,
) -> list[alerts.Alert]:
    hour = snapshot.windows.get("1h") if snapshot else None
    return alerts.evaluate(
        t,
        pending=live.pending,
        oldest_pending_s=in_scope_oldest(live, fleet_stage),
        expired_leases=live.expired_leases,
        resolved_1h=hour["resolved"] if hour else None,
        failed_1h=hour["failed"] if hour else None,
        live_workers=live_workers,
    )


def status_alerts(
    conn: sa.Connection, client: redis.Redis[bytes] | None, settings: Settings
) -> list[dict[str, Any]]:
    """For one-shot callers (`sous status --json`): everything computed now, no shared snapshot."""
    live = live_numbers(conn)
    snap = compute_snapshot(conn)
    workers = fleet(client)["live_workers"] if client is not None else None
    t = alerts.Thresholds.from_settings(settings)
    return [a.as_dict() for a in current_alerts(live, snap, workers, t, fleet_stage(conn))]


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
