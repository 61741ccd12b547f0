"""Per-user limits on costly resources, shared by every API process of a box through Redis.

- `ConcurrencySlots`: at most N things at once per user (image fetches, event streams). Each
  holder is a member of a Redis sorted set scored by when its slot lapses; a holder that dies
  without releasing (kill -9) frees its slot when the lease runs out, long-lived holders
  (streams) renew it.
- `HourlyBudget`: at most N units per user per clock hour (/standardize items); a fixed
  window, so a refusal can say exactly when the budget returns (Retry-After).

Both run their check-and-take as one Lua script (atomic across processes). When Redis cannot
be reached they fall back to counting in this process, so a Redis outage loosens a limit to
"per API process" instead of refusing every request (submissions work without Redis too).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import anyio
import redis
import redis.asyncio as aioredis

from api.errors import ApiError
from core.logging import log_text
from core.settings import Settings

log = logging.getLogger(__name__)
STREAM_LEASE = 60.0  # an open stream renews its slot well within this (api/extraction.py)

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000) + 1000)
return 1
"""
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
return 1
"""
_TAKE = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 3700)
if used > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 0
end
return 1
"""


class ConcurrencySlots:
    def __init__(self, client: aioredis.Redis[bytes], name: str, per_user: int, lease_seconds: float) -> None:
        self.client = client
        self.name = name
        self.per_user = per_user
        self.lease_seconds = lease_seconds
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._local: dict[str, set[str]] = defaultdict(set)  # the fallback when Redis is down

    def _key(self, user: str) -> str:
        return f"sous:slots:{self.name}:{user}"

    async def acquire(self, user: str) -> str | None:
        """A slot id, or None when the user already holds `per_user` slots."""
        slot = uuid.uuid4().hex
        try:
            taken = await self._acquire(
                keys=[self._key(user)], args=[slot, self.per_user, self.lease_seconds]
            )
        except redis.RedisError as exc:
            log.warning("limiter_redis_unavailable", extra={"limit": self.name, "error": log_text(exc)})
            if len(self._local[user]) >= self.per_user:
                return None
            self._local[user].add(slot)
            return slot
        return slot if taken else None

    async def renew(self, user: str, slot: str) -> None:
        if slot in self._local.get(user, ()):
            return
        with contextlib.suppress(redis.RedisError):  # the holder keeps going; the lease may lapse
            await self._renew(keys=[self._key(user)], args=[slot, self.lease_seconds])

    async def release(self, user: str, slot: str) -> None:
        local = self._local.get(user)
        if local is not None and slot in local:
            local.discard(slot)
            if not local:
                del self._local[user]
            return
        with contextlib.suppress(redis.RedisError):  # else the slot lapses with its lease
            await self.client.zrem(self._key(user), slot)


class HourlyBudget:
    def __init__(self, client: redis.Redis[bytes], name: str, per_hour: int) -> None:
        self.client = client
        self.name = name
        self.per_hour = per_hour
        self._take = client.register_script(_TAKE)
        self._local: dict[tuple[str, int], int] = {}

    def take(self, user: str, units: int) -> int | None:
        """None when `units` fit in this hour's budget (and are taken), else the seconds until
        the next hour's budget starts."""
        now = time.time()
        window = int(now // 3600)
        retry_after = max(1, math.ceil((window + 1) * 3600 - now))
        try:
            taken = self._take(keys=[f"sous:budget:{self.name}:{user}:{window}"], args=[units, self.per_hour])
        except redis.RedisError as exc:
            log.warning("limiter_redis_unavailable", extra={"limit": self.name, "error": log_text(exc)})
            self._local = {k: v for k, v in self._local.items() if k[1] == window}
            used = self._local.get((user, window), 0)
            if used + units > self.per_hour:
                return retry_after
            self._local[(user, window)] = used + units
            return None
        return None if taken else retry_after


class ApiLimits:
    """The limits of one API process (built in the app's lifespan, after gunicorn forks)."""

    def __init__(self, settings: Settings, sync_client: redis.Redis[bytes]) -> None:
        assert settings.redis_url is not None
        self.client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        # A fetch slot outlives the fetch's own deadline only by a margin: a process killed
        # mid-fetch does not hold the user's slot for long.
        self.fetches = ConcurrencySlots(
            self.client, "fetch", settings.menu_fetch_per_user, settings.menu_fetch_deadline_seconds + 15
        )
        self.streams = ConcurrencySlots(
            self.client, "events", settings.api_sse_streams_per_user, STREAM_LEASE
        )
        self.standardize = HourlyBudget(sync_client, "standardize", settings.api_standardize_items_per_hour)
        self.fetch_capacity = settings.menu_fetch_per_process
        self.fetches_in_process = 0

    @contextlib.asynccontextmanager
    async def fetch_slot(self, user: str) -> AsyncIterator[None]:
        """Held while one image is fetched: 503 when this process runs its maximum of fetches
        already, 429 when the user has their maximum in flight (on any process)."""
        if self.fetches_in_process >= self.fetch_capacity:
            raise ApiError(
                503,
                "FETCH_CAPACITY",
                "the server is fetching as many images as it can; try again shortly",
                {"Retry-After": "5"},
            )
        self.fetches_in_process += 1
        try:
            slot = await self.fetches.acquire(user)
            if slot is None:
                raise ApiError(
                    429,
                    "TOO_MANY_FETCHES",
                    f"at most {self.fetches.per_user} image fetches per user at a time",
                    {"Retry-After": "5"},
                )
            try:
                yield
            finally:
                with anyio.CancelScope(shield=True):
                    await self.fetches.release(user, slot)
        finally:
            self.fetches_in_process -= 1

    async def aclose(self) -> None:
        await self.client.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
