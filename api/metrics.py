"""GET /metrics: the queue's numbers derived from Postgres at scrape time, plus the counters
and histograms of every process on the box (gunicorn workers, RQ workers, the dispatcher)
merged from their PROMETHEUS_MULTIPROC_DIR files. See docs/observability.md."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from typing import Any

import redis
import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core import alerts, db, observability, stage
from core.observability import WAIT_BUCKETS, Live, Snapshot

STATUSES = ("pending", "processing")
SOURCES = ("scraper", "recipe")


class QueueCollector(Collector):
    """One scrape's numbers, read once (live) or from the shared snapshot."""

    def __init__(
        self, live: Live | None, snapshot: Snapshot | None, fleet: dict[str, Any], fired: list[alerts.Alert]
    ) -> None:
        self.live, self.snapshot, self.fleet, self.fired = live, snapshot, fleet, fired

    def collect(self) -> Iterator[Metric]:
        yield from self._live()
        yield from self._snapshot()
        yield from self._fleet()
        firing = {a.name for a in self.fired}
        g = GaugeMetricFamily(
            "sous_alert_firing", "1 while the alert condition holds (ALERT_* thresholds)", labels=["alert"]
        )
        for name in alerts.ALERT_NAMES:
            g.add_metric([name], 1.0 if name in firing else 0.0)
        yield g

    def _live(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("sous_database_up", "1 when Postgres answered this scrape")
        up.add_metric([], 0.0 if self.live is None else 1.0)
        yield up
        if self.live is None:
            return
        depth = GaugeMetricFamily(
            "sous_queue_depth", "Live ingredient rows by status and source", labels=["status", "source"]
        )
        for status in STATUSES:
            for source in SOURCES:
                depth.add_metric([status, source], float(self.live.depth.get(status, {}).get(source, 0)))
        yield depth
        oldest = GaugeMetricFamily(
            "sous_queue_oldest_pending_seconds", "Age of the oldest pending row (0: none)"
        )
        oldest.add_metric([], self.live.oldest_pending_s or 0.0)
        yield oldest
        expired = GaugeMetricFamily("sous_queue_expired_leases", "Processing rows whose lease has expired")
        expired.add_metric([], float(self.live.expired_leases))
        yield expired
        menus = GaugeMetricFamily("sous_menu_jobs", "Menu extraction jobs by status", labels=["status"])
        for status, n in sorted(self.live.menu_jobs.items()):
            menus.add_metric([status], float(n))
        yield menus

    def _snapshot(self) -> Iterable[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        age = GaugeMetricFamily(
            "sous_obs_snapshot_age_seconds", "Age of the shared snapshot the totals come from"
        )
        age.add_metric([], round(snap.age(), 3))
        yield age
        rows = CounterMetricFamily(
            "sous_queue_rows_finished",
            "Ingredient rows in a terminal status, by outcome, source and provider (from Postgres)",
            labels=["status", "source", "provider"],
        )
        for t in snap.totals:
            rows.add_metric([t["status"], t["source"], t["provider"]], float(t["n"]))
        yield rows
        hist = GaugeHistogramMetricFamily(
            "sous_queue_wait_seconds",
            "Wait (created -> processing start) of rows claimed in the last hour (from Postgres)",
        )
        bounds = [str(b) for b in WAIT_BUCKETS] + ["+Inf"]
        hist.add_metric(
            [], list(zip(bounds, [float(n) for n in snap.wait_buckets], strict=True)), snap.wait_sum_s
        )
        yield hist
        window = GaugeMetricFamily(
            "sous_queue_window_rows",
            "Rows finished or claimed per window (from Postgres)",
            labels=["window", "kind"],
        )
        for label, w in snap.windows.items():
            for kind in ("resolved", "rejected", "failed", "claimed"):
                window.add_metric([label, kind], float(w[kind]))
        yield window
        cache = GaugeMetricFamily(
            "sous_ingredient_cache",
            "Canonical cache: entries (one per settled miss) and hits",
            labels=["kind"],
        )
        cache.add_metric(["entries"], float(snap.cache.get("entries", 0)))
        cache.add_metric(["hits"], float(snap.cache.get("hits", 0)))
        yield cache
        ratio = GaugeMetricFamily(
            "sous_ingredient_cache_hit_ratio", "hits / (hits + entries): lookups served from the cache"
        )
        served = snap.cache.get("hits", 0) + snap.cache.get("entries", 0)
        ratio.add_metric([], snap.cache.get("hits", 0) / served if served else 0.0)
        yield ratio

    def _fleet(self) -> Iterable[Metric]:
        if self.fleet.get("live_workers") is None:
            return
        workers = GaugeMetricFamily("sous_live_workers", "RQ workers with a live heartbeat", labels=["state"])
        states: dict[str, int] = {}
        for w in self.fleet["workers"]:
            states[w["state"]] = states.get(w["state"], 0) + 1
        for state in sorted({"busy", "idle", *states}):
            workers.add_metric([state], float(states.get(state, 0)))
        yield workers
        rq = GaugeMetricFamily(
            "sous_rq_jobs", "RQ jobs queued or started, by queue", labels=["queue", "state"]
        )
        for name, q in self.fleet["queues"].items():
            for state, n in q.items():
                rq.add_metric([name, state], float(n))
        yield rq


class MergedMultiProcess(Collector):
    """prometheus_client's multiprocess files of several directories, merged (this box's API
    workers, and the RQ workers of another container sharing a volume: OBS_METRICS_DIRS)."""

    def __init__(self, dirs: list[str]) -> None:
        self.dirs = dirs

    def collect(self) -> Iterable[Metric]:
        files = [f for d in self.dirs for f in glob.glob(os.path.join(d, "*.db"))]
        return MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]


def process_dirs(extra: str) -> list[str]:
    dirs = [os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), *extra.split(",")]
    return [d.strip() for d in dirs if d.strip() and os.path.isdir(d.strip())]


def render(queue: QueueCollector, extra_dirs: str) -> bytes:
    """The queue's families, then the processes' (default registry when not multiprocess)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(queue)
    dirs = process_dirs(extra_dirs)
    if dirs:
        processes = CollectorRegistry(auto_describe=False)
        processes.register(MergedMultiProcess(dirs))
    else:
        processes = REGISTRY
    return generate_latest(registry) + generate_latest(processes)


def scrape(
    engine: sa.Engine,
    store: observability.SnapshotStore,
    client: redis.Redis[bytes],
    thresholds: alerts.Thresholds,
) -> QueueCollector:
    """Reads what one scrape needs; a Postgres or Redis outage drops its families, not the page."""
    fleet_stage = None
    try:
        with db.transaction(engine) as conn:
            live: Live | None = observability.live_numbers(conn)
            fleet_stage = stage.fleet_stage(conn)
        snapshot = store.get()
    except Exception:
        live, snapshot = None, None
    fleet = observability.fleet(client)
    workers = fleet["live_workers"]
    fired = observability.current_alerts(live, snapshot, workers, thresholds, fleet_stage) if live else []
    return QueueCollector(live, snapshot, fleet, fired)


def provider_summary(extra_dirs: str) -> dict[str, dict[str, Any]]:
    """Per provider, from the merged process metrics: calls by outcome, and latency p50/p95
    estimated from the histogram buckets (as Prometheus' histogram_quantile does)."""
    dirs = process_dirs(extra_dirs)
    families = MergedMultiProcess(dirs).collect() if dirs else REGISTRY.collect()
    calls: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in families:
        for s in family.samples:
            if s.name == "sous_provider_calls_total":
                by = calls.setdefault(s.labels["provider"], {})
                by[s.labels["outcome"]] = by.get(s.labels["outcome"], 0.0) + s.value
            elif s.name == "sous_provider_latency_seconds_bucket":
                b = buckets.setdefault(s.labels["provider"], {})
                le = float(s.labels["le"])
                b[le] = b.get(le, 0.0) + s.value
    out: dict[str, dict[str, Any]] = {}
    for provider in sorted(set(calls) | set(buckets)):
        by = calls.get(provider, {})
        points = sorted(buckets.get(provider, {}).items())
        out[provider] = {
            "calls": int(sum(by.values())),
            "ok": int(by.get("ok", 0)),
            "errors": {k: int(v) for k, v in sorted(by.items()) if k != "ok" and v},
            "latency_p50_s": quantile(0.5, points),
            "latency_p95_s": quantile(0.95, points),
        }
    return out


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """Linear interpolation inside the bucket holding the q-th observation."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return round(lower_bound, 4)
            span = count - lower_count
            frac = (rank - lower_count) / span if span else 1.0
            return round(lower_bound + (bound - lower_bound) * frac, 4)
        lower_bound, lower_count = bound, count
    return round(lower_bound, 4)
