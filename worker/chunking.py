"""Grouping claimed rows by name and splitting them into chunks that fit a token budget.

Pure functions, no I/O: the dispatcher groups a claim, splits it into chunks (one RQ job each)
and names every job after the exact (id, attempt) pairs it carries, so enqueueing the same
claim again yields the same job id and RQ refuses the duplicate.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# Names longer than this are not worth caching (and would overflow a btree index entry);
# such inputs are junk in practice and are answered without the cache.
MAX_CACHE_KEY_CHARS = 300


@dataclass
class Group(Generic[T]):
    """Rows whose normalized name is the same: one model answer fans out to all of them."""

    key: str
    items: list[T] = field(default_factory=list)


def group_by_key(items: Iterable[T], key: Callable[[T], str], *, dedupe: bool = True) -> list[Group[T]]:
    """Groups items by key, in order of first appearance; without dedupe every item is alone."""
    if not dedupe:
        return [Group(key(item), [item]) for item in items]
    groups: dict[str, Group[T]] = {}
    for item in items:
        k = key(item)
        groups.setdefault(k, Group(k)).items.append(item)
    return list(groups.values())


def split_by_budget(
    groups: Sequence[Group[T]], cost: Callable[[Group[T]], int], *, token_budget: int, max_items: int
) -> list[list[Group[T]]]:
    """Packs groups, in order, into chunks of at most `max_items` groups and `token_budget` tokens.

    A group that alone exceeds the budget gets a chunk of its own rather than being refused:
    the provider chain splits or rejects it, and the row is never stuck.
    """
    if token_budget <= 0 or max_items <= 0:
        raise ValueError("token_budget and max_items must be positive")
    chunks: list[list[Group[T]]] = []
    current: list[Group[T]] = []
    used = 0
    for group in groups:
        tokens = max(cost(group), 1)
        if current and (len(current) >= max_items or used + tokens > token_budget):
            chunks.append(current)
            current, used = [], 0
        current.append(group)
        used += tokens
    if current:
        chunks.append(current)
    return chunks


def chunk_job_id(prefix: str, fences: Iterable[tuple[int | str, int]]) -> str:
    """A deterministic RQ job id for the exact (row id, attempt) pairs of a chunk."""
    digest = hashlib.sha256()
    # Ids of one table are all ints (numeric order, as before) or all strings (uuid, text).
    for row_id, attempt in sorted(fences, key=lambda f: (str(f[0]).zfill(20), f[1])):
        digest.update(f"{row_id}:{attempt};".encode())
    return f"{prefix}-{digest.hexdigest()[:24]}"


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (Python's hash() differs per process)."""
    raw = hashlib.sha256(name.encode()).digest()[:8]
    return int.from_bytes(raw, "big", signed=True)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of a small sample; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered) - 1e-9)))  # 0.95*20 is 19.000000000000004
    return ordered[rank - 1]
