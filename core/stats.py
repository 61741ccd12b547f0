"""Percentiles of the pipeline's own measurements (queue lag, chunk latency, the SLO gate's waits).

Nearest rank on purpose: a reported p95 is a wait some row really had, and a gate's p95 does not
move with interpolation between two rows. statistics.quantiles only interpolates (its
'inclusive' p95 of 1..10 is 9.55 where nearest rank says 10), so it would change every figure
in queue_runs and the SLO gate; the four lines below stay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of a small sample; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered) - 1e-9)))  # 0.95*20 is 19.000000000000004
    return ordered[rank - 1]
