"""The endpoints of one provider: several model servers behind one name ("local").

LOCAL_LLM_BASE_URL may list several OpenAI-compatible servers (comma-separated), for example
one vLLM per GPU or per box. A request goes to the endpoint with the fewest requests in flight
from this process (ties: round-robin, from a random start so that the workers of a fleet do not
all begin on the first server). Each endpoint is health-gated on its own (/health, cached for
HEALTH_TTL_SECONDS) and cooled down on its own after FAILURES_BEFORE_COOLDOWN failed calls in a
row; the provider is available while any endpoint is. An answer counts as a passing health
check, so /health is probed only for endpoints that have not answered lately.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import openai

FAILURES_BEFORE_COOLDOWN = 3
HEALTH_TTL_SECONDS = 5.0


def split_base_urls(value: str) -> list[str]:
    """`http://a:8000/v1, http://b:8000/v1/` -> the URLs without blanks or trailing slashes."""
    return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]


def health_url_for(base_url: str) -> str:
    """vLLM and `sous sim` serve /health beside /v1."""
    return re.sub(r"/v1$", "", base_url.rstrip("/")) + "/health"


@dataclass
class Endpoint:
    base_url: str | None
    health_url: str | None
    client: openai.OpenAI
    in_flight: int = 0
    consecutive_failures: int = 0
    cooldown_until: float = 0.0
    health_checked_at: float = field(default=-1e9)
    healthy: bool = True

    @property
    def label(self) -> str:
        return self.base_url or "default"


class EndpointPool:
    """Picks, counts and health-gates the endpoints of one provider (thread-safe)."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        clock: Callable[[], float],
        check_health: Callable[[Endpoint], bool],
        cooldown_seconds: float,
        rng: random.Random | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("a provider needs at least one endpoint")
        self.endpoints = list(endpoints)
        self._clock = clock
        self._check_health = check_health
        self.cooldown_seconds = cooldown_seconds
        self._lock = threading.Lock()
        rng = rng or random.Random()  # noqa: S311 - spreads load, guards no secret
        self._next = rng.randrange(len(self.endpoints))

    def is_available(self, ep: Endpoint) -> bool:
        now = self._clock()
        if now < ep.cooldown_until:
            return False
        if ep.health_url is None:
            return True
        if now - ep.health_checked_at >= HEALTH_TTL_SECONDS:
            ep.healthy = self._check_health(ep)
            ep.health_checked_at = now
        return ep.healthy

    def any_available(self) -> bool:
        return any(self.is_available(ep) for ep in self.endpoints)

    def acquire(self, tried: Sequence[Endpoint] = ()) -> Endpoint | None:
        """The available endpoint with the fewest requests in flight, counted as one more in
        flight (call `release`). Endpoints already tried for this request come last; None when
        no endpoint is available."""
        usable = [i for i, ep in enumerate(self.endpoints) if self.is_available(ep)]
        if not usable:
            return None
        fresh = [i for i in usable if not any(self.endpoints[i] is t for t in tried)]
        candidates = fresh or usable
        n = len(self.endpoints)
        with self._lock:
            # Least outstanding first; among equals, the first at or after the round-robin cursor.
            best = min(candidates, key=lambda i: (self.endpoints[i].in_flight, (i - self._next) % n))
            self._next = (best + 1) % n
            ep = self.endpoints[best]
            ep.in_flight += 1
            return ep

    def release(self, ep: Endpoint) -> None:
        with self._lock:
            ep.in_flight -= 1

    def record_success(self, ep: Endpoint) -> None:
        """An answer is a passing health check too: a busy server is not probed, so a /health
        that is slow under load cannot take a server that answers out of the rotation."""
        ep.consecutive_failures = 0
        ep.healthy = True
        ep.health_checked_at = self._clock()

    def record_failure(self, ep: Endpoint, connection_error: bool = False) -> bool:
        """Counts one failed call of this endpoint; True when it starts a cool-down. A refused
        connection also forgets the cached health, so the next pick checks /health again."""
        if connection_error:
            ep.health_checked_at = -1e9
        ep.consecutive_failures += 1
        if ep.consecutive_failures >= FAILURES_BEFORE_COOLDOWN and self.cooldown_seconds > 0:
            ep.cooldown_until = self._clock() + self.cooldown_seconds
            ep.consecutive_failures = 0
            return True
        return False
