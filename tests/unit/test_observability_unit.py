"""The pure parts of observability: alert conditions, histogram buckets, quantiles, and the
monitoring profile's files agreeing with the documented metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from api.metrics import quantile
from core.alerts import Thresholds, evaluate, failure_rate
from core.observability import WAIT_BUCKETS, cumulative_buckets

ROOT = Path(__file__).resolve().parents[2]
T = Thresholds(queue_depth=100, oldest_pending_seconds=60, expired_leases=5, failure_rate=0.1,
               failure_min_rows=10, min_live_workers=1)  # fmt: skip
QUIET = {
    "pending": 0,
    "oldest_pending_s": None,
    "expired_leases": 0,
    "resolved_1h": 0,
    "failed_1h": 0,
    "live_workers": 2,
}


def names(**changes: object) -> set[str]:
    return {a.name for a in evaluate(T, **{**QUIET, **changes})}  # type: ignore[arg-type]


def test_each_condition_fires_above_its_threshold_only() -> None:
    assert names() == set()
    assert names(pending=100) == set() and names(pending=101) == {"queue_depth"}
    assert names(oldest_pending_s=60.0) == set() and names(oldest_pending_s=61.0) == {"oldest_pending"}
    assert names(expired_leases=6) == {"expired_leases"}
    assert names(live_workers=0) == {"no_live_worker"}
    assert names(live_workers=None) == set()  # unknown (Redis down): /readyz says so instead


def test_failure_rate_excludes_rejected_and_needs_enough_rows() -> None:
    assert failure_rate(0, 0) is None and failure_rate(9, 1) == 0.1
    assert names(resolved_1h=8, failed_1h=2) == {"failure_rate"}  # 20 % of 10 rows
    assert names(resolved_1h=3, failed_1h=2) == set()  # 5 rows: too few to judge
    assert names(resolved_1h=90, failed_1h=10) == set()  # exactly 10 %: not above
    assert names(resolved_1h=None, failed_1h=None) == set()


def test_cumulative_buckets_from_width_bucket_indexes() -> None:
    # index 0: below 0.5 s; index 1: [0.5, 1); the last index: above the last bound.
    counts = cumulative_buckets({"0": 3, "1": 2, str(len(WAIT_BUCKETS)): 4})
    assert len(counts) == len(WAIT_BUCKETS) + 1
    assert counts[0] == 3 and counts[1] == 5 and counts[-2] == 5 and counts[-1] == 9


def test_quantile_interpolates_inside_the_bucket() -> None:
    cumulative = [(0.1, 0.0), (0.5, 50.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, cumulative) == 0.5
    assert quantile(0.75, cumulative) == 0.75
    assert quantile(0.95, [(1.0, 0.0), (float("inf"), 10.0)]) == 1.0  # beyond the last bound
    assert quantile(0.5, []) is None and quantile(0.5, [(1.0, 0.0)]) is None


def test_monitoring_files_use_documented_metrics() -> None:
    doc = (ROOT / "docs/observability.md").read_text()
    documented = set(re.findall(r"`(sous_[a-z_]+)`", doc))
    dashboard = json.loads((ROOT / "images/monitoring/grafana/dashboards/sous.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((ROOT / "images/monitoring/alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {
        re.sub(r"_(bucket|total|count|sum)$", "", m) for e in exprs for m in re.findall(r"\bsous_[a-z_]+", e)
    }
    assert used, exprs
    undocumented = {m for m in used if m not in documented and f"{m}_total" not in documented}
    assert not undocumented, undocumented
    prometheus = yaml.safe_load((ROOT / "images/monitoring/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["api:8000"]
