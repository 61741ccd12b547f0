"""Alert conditions of the ingredient queue, with thresholds from the environment (ALERT_*).

One pure function, `evaluate`, decides; /readyz, /api/queue/stats, /metrics, the dashboard
and `sous status --json` all call it with numbers from core/observability.py, so they can
never disagree about what is firing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.settings import Settings


@dataclass(frozen=True)
class Thresholds:
    """The defaults are the ALERT_* settings' (core/settings.py), the one place they are written."""

    queue_depth: int
    oldest_pending_seconds: float
    expired_leases: int
    failure_rate: float
    failure_min_rows: int
    min_live_workers: int

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        return cls(
            queue_depth=s.alert_queue_depth,
            oldest_pending_seconds=s.alert_oldest_pending_seconds,
            expired_leases=s.alert_expired_leases,
            failure_rate=s.alert_failure_rate,
            failure_min_rows=s.alert_failure_min_rows,
            min_live_workers=s.alert_min_live_workers,
        )


@dataclass(frozen=True)
class Alert:
    name: str
    value: float
    threshold: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Every alert name, so /metrics can report each one as 0 or 1 (a missing series is not "ok").
ALERT_NAMES = ("queue_depth", "oldest_pending", "expired_leases", "failure_rate", "no_live_worker")


def failure_rate(resolved: int, failed: int) -> float | None:
    """failed / (resolved + failed); rejected rows (known-invalid input) are not failures."""
    total = resolved + failed
    return None if total == 0 else failed / total


def evaluate(
    t: Thresholds,
    *,
    pending: int,
    oldest_pending_s: float | None,
    expired_leases: int,
    resolved_1h: int | None,
    failed_1h: int | None,
    live_workers: int | None,
) -> list[Alert]:
    """The alerts firing now. A number that is unknown (None: its source is down or not
    computed yet) fires nothing here; /readyz reports the source being down."""
    out: list[Alert] = []
    if pending > t.queue_depth:
        out.append(
            Alert("queue_depth", pending, t.queue_depth, f"{pending} rows pending (> {t.queue_depth})")
        )
    if oldest_pending_s is not None and oldest_pending_s > t.oldest_pending_seconds:
        out.append(
            Alert(
                "oldest_pending",
                round(oldest_pending_s, 1),
                t.oldest_pending_seconds,
                f"oldest pending row waited {oldest_pending_s:.0f}s (> {t.oldest_pending_seconds:.0f}s)",
            )
        )
    if expired_leases > t.expired_leases:
        out.append(
            Alert(
                "expired_leases",
                expired_leases,
                t.expired_leases,
                f"{expired_leases} processing rows have an expired lease (> {t.expired_leases})",
            )
        )
    if resolved_1h is not None and failed_1h is not None and resolved_1h + failed_1h >= t.failure_min_rows:
        rate = failure_rate(resolved_1h, failed_1h) or 0.0
        if rate > t.failure_rate:
            out.append(
                Alert(
                    "failure_rate",
                    round(rate, 4),
                    t.failure_rate,
                    f"{failed_1h} of {resolved_1h + failed_1h} rows failed in the last hour "
                    f"({rate:.1%} > {t.failure_rate:.1%}; rejected excluded)",
                )
            )
    if live_workers is not None and live_workers < t.min_live_workers:
        out.append(
            Alert(
                "no_live_worker",
                live_workers,
                t.min_live_workers,
                f"{live_workers} live RQ workers (< {t.min_live_workers})",
            )
        )
    return out
