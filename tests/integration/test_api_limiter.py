"""The per-user limiter of the API (api/limiter.py) against a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import redis
import redis.asyncio as aioredis

from api.limiter import ConcurrencySlots, HourlyBudget
from devtools.services import free_port


def test_slots_cap_release_and_lapse(redis_url: str) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
        slots = ConcurrencySlots(client, "test", per_user=3, lease_seconds=0.5)
        user = str(uuid.uuid4())
        # 20 at once, as from several processes: exactly the cap gets through.
        taken = await asyncio.gather(*(slots.acquire(user) for _ in range(20)))
        held = [s for s in taken if s is not None]
        assert len(held) == 3
        assert await slots.acquire(str(uuid.uuid4())) is not None  # per user
        await slots.release(user, held[0])
        again = await slots.acquire(user)
        assert again is not None and await slots.acquire(user) is None
        await asyncio.sleep(0.7)  # holders that vanished without releasing: their leases lapse
        assert await slots.acquire(user) is not None
        renewed = await slots.acquire(user)
        assert renewed is not None
        for _ in range(3):
            await asyncio.sleep(0.3)
            await slots.renew(user, renewed)  # a live holder keeps its slot past the lease
        assert await slots.acquire(user) is not None and await slots.acquire(user) is not None
        assert await slots.acquire(user) is None  # renewed + the two above
        await client.aclose()

    asyncio.run(run())


def test_slots_count_in_the_process_when_redis_is_down() -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
        slots = ConcurrencySlots(client, "test", per_user=2, lease_seconds=5)
        first, second = await slots.acquire("u"), await slots.acquire("u")
        assert first and second and await slots.acquire("u") is None
        await slots.release("u", first)
        assert await slots.acquire("u") is not None
        await client.aclose()

    asyncio.run(run())


def test_hourly_budget(redis_url: str) -> None:
    budget = HourlyBudget(redis.Redis.from_url(redis_url), "test", per_hour=20)
    user = str(uuid.uuid4())
    assert budget.take(user, 15) is None
    wait = budget.take(user, 6)
    assert wait is not None and 0 < wait <= 3600
    assert budget.take(user, 5) is None  # a refused request took nothing
    assert budget.take(user, 1) is not None
    assert budget.take(str(uuid.uuid4()), 20) is None
    down = HourlyBudget(redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"), "test", per_hour=3)
    assert down.take(user, 3) is None and down.take(user, 1) is not None
