"""The simulated inference engine: max-num-seqs slots, a FIFO waiting queue, and decode time
per token that depends on how many sequences run at once (continuous batching)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from model.sim.profiles import Profile

DECODE_STEP_TOKENS = 8  # re-read the running count every few tokens


@dataclass(frozen=True)
class Timing:
    queue_s: float
    ttft_s: float
    e2e_s: float


class Engine:
    def __init__(self, profile: Profile, time_scale: float = 1.0, max_num_seqs: int | None = None) -> None:
        self.profile = profile
        self.time_scale = time_scale
        self.max_num_seqs = max_num_seqs or profile.max_num_seqs
        self.running = 0
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None  # created inside the server's event loop

    async def generate(self, prompt_tokens: int, completion_tokens: int) -> Timing:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_num_seqs)
        started = time.perf_counter()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        queued = time.perf_counter() - started
        self.running += 1
        try:
            await self._sleep(
                self.profile.prefill_seconds(prompt_tokens) + self.profile.seconds_per_token(self.running)
            )
            ttft = time.perf_counter() - started
            remaining = completion_tokens - 1
            while remaining > 0:
                step = min(remaining, DECODE_STEP_TOKENS)
                await self._sleep(step * self.profile.seconds_per_token(self.running))
                remaining -= step
        finally:
            self.running -= 1
            self._slots.release()
        return Timing(queue_s=queued, ttft_s=ttft, e2e_s=time.perf_counter() - started)

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.time_scale > 0:
            await asyncio.sleep(seconds * self.time_scale)
