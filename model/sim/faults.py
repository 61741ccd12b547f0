"""Injectable faults: a base rate set at start-up, and windows opened at run time through
POST /admin/faults so chaos tests can break the model for a while and let it recover."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

Fault = Literal["error", "timeout", "malformed", "rejected"]


@dataclass(frozen=True)
class FaultRates:
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    rejected_rate: float = 0.0  # a valid answer that calls every ingredient line "not food"

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.error_rate + self.timeout_rate + self.malformed_rate + self.rejected_rate > 1.0:
            raise ValueError("fault rates add up to more than 1")


class Faults:
    def __init__(self, base: FaultRates, seed: int | None = None) -> None:
        self.base = base
        self._window: FaultRates | None = None
        self._window_ends = 0.0
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.healthy = True

    def current(self) -> FaultRates:
        if self._window is not None and time.monotonic() < self._window_ends:
            return self._window
        self._window = None
        return self.base

    def open_window(self, rates: FaultRates, duration_s: float | None) -> None:
        """Rates for duration_s seconds (None or 0: they become the base rates)."""
        if not duration_s:
            self.base, self._window = rates, None
        else:
            self._window, self._window_ends = rates, time.monotonic() + duration_s

    def draw(self) -> Fault | None:
        rates = self.current()
        r = self._rng.random()
        if r < rates.error_rate:
            return "error"
        if r < rates.error_rate + rates.timeout_rate:
            return "timeout"
        if r < rates.error_rate + rates.timeout_rate + rates.malformed_rate:
            return "malformed"
        if r < rates.error_rate + rates.timeout_rate + rates.malformed_rate + rates.rejected_rate:
            return "rejected"
        return None

    def describe(self) -> dict[str, Any]:
        left = max(0.0, self._window_ends - time.monotonic()) if self._window else 0.0
        return {**asdict(self.current()), "window_seconds_left": round(left, 3), "healthy": self.healthy}
