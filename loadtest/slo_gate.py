"""The SLO gate: reads Postgres after a run and says whether the service levels held.

Rows per 5-minute window, p50/p95/p99 wait (created → processing start) and end to end
(created → terminal), failure rate excluding `rejected`, rows lost (not terminal after the drain
period) and rows resolved twice (from the soak audit trigger, loadtest/audit.sql). Prints a table,
writes JSON and PNG charts, and exits non-zero on any breach.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core import db
from core.db import create_engine
from core.errors import DatabaseError
from core.stats import percentile as nearest_rank

TERMINAL = ("resolved", "failed", "rejected")
WINDOW = timedelta(minutes=5)


@dataclass
class Thresholds:
    min_rows_per_5min: float = 50
    max_p95_wait_s: float = 300
    max_failed_rate: float = 0.02
    max_lost: int = 0
    max_resolved_twice: int = 0


@dataclass
class Report:
    since: str
    until: str
    rows: int
    by_status: dict[str, int]
    windows: list[dict[str, Any]]
    min_rows_per_5min: float
    wait_s: dict[str, float]
    end_to_end_s: dict[str, float]
    failed_rate: float
    lost: int
    lost_ids: list[int]
    resolved_twice: int
    by_provider: dict[str, int]
    thresholds: Thresholds
    breaches: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.breaches


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in 0..100 (the pipeline's own, core.stats.percentile)."""
    value = nearest_rank(values, q / 100)
    return math.nan if value is None else value


def _terminal_at(row: dict[str, Any]) -> datetime | None:
    if row["status"] not in TERMINAL:
        return None
    at: datetime = (
        row["resolved_at"] if row["status"] == "resolved" and row["resolved_at"] else row["updated_at"]
    )
    return at


def _windows(rows: list[dict[str, Any]], since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Terminal rows per 5-minute window of the run; a run shorter than 5 minutes is one window
    whose count is scaled to 5 minutes."""
    done = [t for r in rows if (t := _terminal_at(r)) is not None]
    span = until - since
    if span < WINDOW:
        n = sum(1 for t in done if since <= t < until + timedelta(seconds=30))
        scale = WINDOW / span if span.total_seconds() > 0 else 1.0
        return [
            {"start": since.isoformat(), "seconds": span.total_seconds(), "rows": n, "per_5min": n * scale}
        ]
    out = []
    start = since
    while start + WINDOW <= until:
        n = sum(1 for t in done if start <= t < start + WINDOW)
        out.append(
            {"start": start.isoformat(), "seconds": WINDOW.total_seconds(), "rows": n, "per_5min": float(n)}
        )
        start += WINDOW
    return out


def _pcts(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "n": float(len(values)),
    }


def evaluate(engine: sa.Engine, since: datetime, until: datetime, thresholds: Thresholds) -> Report:
    with engine.connect() as conn:
        rows = db.fetch_all(conn, "slo_rows", {"since": since, "until": until}, package="loadtest")
        try:
            doubles = db.fetch_all(conn, "slo_resolved_twice", package="loadtest")
        except DatabaseError:  # the audit trigger was not installed for this run
            conn.rollback()
            doubles = []
    by_status: dict[str, int] = {}
    by_provider: dict[str, int] = {}
    waits: list[float] = []
    e2e: list[float] = []
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        if r["provider"]:
            by_provider[r["provider"]] = by_provider.get(r["provider"], 0) + 1
        if r["processing_started_at"]:
            waits.append((r["processing_started_at"] - r["created_at"]).total_seconds())
        if (finished := _terminal_at(r)) is not None:
            e2e.append((finished - r["created_at"]).total_seconds())
    lost_ids = [r["id"] for r in rows if r["status"] not in TERMINAL]
    counted = by_status.get("resolved", 0) + by_status.get("failed", 0)
    failed_rate = by_status.get("failed", 0) / counted if counted else 0.0
    windows = _windows(rows, since, until)
    report = Report(
        since=since.isoformat(),
        until=until.isoformat(),
        rows=len(rows),
        by_status=by_status,
        windows=windows,
        min_rows_per_5min=min((w["per_5min"] for w in windows), default=0.0),
        wait_s=_pcts(waits),
        end_to_end_s=_pcts(e2e),
        failed_rate=failed_rate,
        lost=len(lost_ids),
        lost_ids=lost_ids[:100],
        resolved_twice=len(doubles),
        by_provider=by_provider,
        thresholds=thresholds,
    )
    t = thresholds
    if not rows:
        report.breaches.append("no rows were created in the run's window")
    if report.min_rows_per_5min < t.min_rows_per_5min:
        report.breaches.append(
            f"throughput {report.min_rows_per_5min:.0f} rows/5 min < {t.min_rows_per_5min:.0f}"
        )
    if not report.wait_s["p95"] < t.max_p95_wait_s:
        report.breaches.append(f"p95 wait {report.wait_s['p95']:.1f} s >= {t.max_p95_wait_s:.0f} s")
    if failed_rate > t.max_failed_rate:
        report.breaches.append(f"failed rate {failed_rate:.2%} > {t.max_failed_rate:.2%}")
    if report.lost > t.max_lost:
        report.breaches.append(f"{report.lost} rows lost (not terminal after the drain)")
    if report.resolved_twice > t.max_resolved_twice:
        report.breaches.append(f"{report.resolved_twice} rows resolved twice")
    return report


def render_table(report: Report) -> str:
    w, e, t = report.wait_s, report.end_to_end_s, report.thresholds
    windows = ", ".join(f"{x['per_5min']:.0f}" for x in report.windows)
    lines = [
        f"SLO gate  {report.since} → {report.until}",
        f"  rows                 {report.rows}  "
        + " ".join(f"{k}={v}" for k, v in sorted(report.by_status.items())),
        "  providers            " + " ".join(f"{k}={v}" for k, v in sorted(report.by_provider.items())),
        f"  rows / 5 min (min)   {report.min_rows_per_5min:.0f}   (windows: {windows})"
        f"   need >= {t.min_rows_per_5min:.0f}",
        f"  wait s p50/p95/p99   {w['p50']:.2f} / {w['p95']:.2f} / {w['p99']:.2f}"
        f"   need p95 < {t.max_p95_wait_s:.0f}",
        f"  end-to-end s         {e['p50']:.2f} / {e['p95']:.2f} / {e['p99']:.2f}",
        f"  failed rate          {report.failed_rate:.2%} (rejected excluded)"
        f"   need <= {t.max_failed_rate:.0%}",
        f"  lost                 {report.lost}",
        f"  resolved twice       {report.resolved_twice}",
        "  result               " + ("PASS" if report.passed else "FAIL: " + "; ".join(report.breaches)),
    ]
    return "\n".join(lines)


def draw_charts(engine: sa.Engine, report: Report, since: datetime, until: datetime, out: Path) -> list[Path]:
    import matplotlib  # noqa: PLC0415 - only the gate draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    with engine.connect() as conn:
        rows = db.fetch_all(conn, "slo_rows", {"since": since, "until": until}, package="loadtest")
    xs = [(r["created_at"] - since).total_seconds() / 60 for r in rows if r["processing_started_at"]]
    ys = [
        (r["processing_started_at"] - r["created_at"]).total_seconds()
        for r in rows
        if r["processing_started_at"]
    ]
    paths = []
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.scatter(xs, ys, s=4, alpha=0.6)
    ax.axhline(
        report.wait_s["p95"], color="tab:red", linestyle="--", label=f"p95 {report.wait_s['p95']:.2f} s"
    )
    ax.set_xlabel("minutes since start (row created)")
    ax.set_ylabel("queue wait, s")
    ax.set_title("Queue wait over time")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "wait_over_time.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(range(len(report.windows)), [x["per_5min"] for x in report.windows], color="tab:green")
    ax.axhline(report.thresholds.min_rows_per_5min, color="tab:red", linestyle="--", label="required")
    ax.set_xlabel("5-minute window")
    ax.set_ylabel("rows finished per 5 min")
    ax.set_title("Throughput per window")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "throughput.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def run_gate(
    database_url: str, since: datetime, until: datetime, thresholds: Thresholds, out: Path
) -> Report:
    out.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url, pool_size=1)
    try:
        report = evaluate(engine, since, until, thresholds)
        (out / "slo.json").write_text(
            json.dumps({**asdict(report), "passed": report.passed}, indent=2, default=str)
        )
        draw_charts(engine, report, since, until, out)
    finally:
        engine.dispose()
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", required=True)
    p.add_argument("--since", required=True, type=datetime.fromisoformat)
    p.add_argument("--until", required=True, type=datetime.fromisoformat)
    p.add_argument("--out", type=Path, default=Path("loadtest/results"))
    p.add_argument("--min-rows-per-5min", type=float, default=Thresholds.min_rows_per_5min)
    p.add_argument("--max-p95-wait", type=float, default=Thresholds.max_p95_wait_s)
    p.add_argument("--max-failed-rate", type=float, default=Thresholds.max_failed_rate)
    args = p.parse_args(argv)
    thresholds = Thresholds(args.min_rows_per_5min, args.max_p95_wait, args.max_failed_rate)
    report = run_gate(args.database_url, args.since, args.until, thresholds, args.out)
    print(render_table(report))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
