"""Grouping, token-budget splitting, deterministic job ids and lock keys (no services)."""

from __future__ import annotations

import pytest

from core.jobs import chunk_job_id
from core.leader import advisory_lock_key
from core.stats import percentile
from worker.chunking import (
    group_by_key,
    split_by_budget,
)


def test_group_by_key_dedupes_in_first_seen_order() -> None:
    groups = group_by_key(["Flour", "salt", "flour ", "SALT", "egg"], lambda s: s.strip().lower())
    assert [g.key for g in groups] == ["flour", "salt", "egg"]
    assert [g.items for g in groups] == [["Flour", "flour "], ["salt", "SALT"], ["egg"]]


def test_group_without_dedupe_keeps_every_item_alone() -> None:
    groups = group_by_key(["a", "a", "b"], str, dedupe=False)
    assert [g.items for g in groups] == [["a"], ["a"], ["b"]]


def test_split_respects_token_budget_and_item_cap() -> None:
    groups = group_by_key([f"n{i}" for i in range(10)], str)
    chunks = split_by_budget(groups, lambda g: 30, token_budget=100, max_items=25)
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    chunks = split_by_budget(groups, lambda g: 1, token_budget=100, max_items=4)
    assert [len(c) for c in chunks] == [4, 4, 2]
    flat = [g.key for c in chunks for g in c]
    assert flat == [f"n{i}" for i in range(10)]  # order kept, nothing lost or repeated


def test_oversized_group_gets_its_own_chunk() -> None:
    groups = group_by_key(["small", "huge", "small2"], str)
    cost = {"small": 10, "huge": 500, "small2": 10}
    chunks = split_by_budget(groups, lambda g: cost[g.key], token_budget=100, max_items=10)
    assert [[g.key for g in c] for c in chunks] == [["small"], ["huge"], ["small2"]]


def test_repeats_cost_one_slot() -> None:
    groups = group_by_key(["salt"] * 100 + ["pepper"], str)
    chunks = split_by_budget(groups, lambda g: 10, token_budget=1000, max_items=2)
    assert len(chunks) == 1
    assert sum(len(g.items) for g in chunks[0]) == 101


def test_split_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        split_by_budget([], lambda g: 1, token_budget=0, max_items=1)


def test_job_id_is_deterministic_and_fenced_on_attempt() -> None:
    a = chunk_job_id("ingredients", [(1, 1), (2, 1)])
    assert a == chunk_job_id("ingredients", [(2, 1), (1, 1)])  # order does not matter
    assert a != chunk_job_id("ingredients", [(1, 2), (2, 1)])  # a new claim is a new job
    assert a != chunk_job_id("shadow", [(1, 1), (2, 1)])
    assert a.startswith("ingredients-")


def test_advisory_lock_key_is_stable_signed_64_bit() -> None:
    k = advisory_lock_key("sous:dispatcher:box-a")
    assert k == advisory_lock_key("sous:dispatcher:box-a")
    assert k != advisory_lock_key("sous:dispatcher:box-b")
    assert -(2**63) <= k < 2**63


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.95) is None
    assert percentile([5.0], 0.5) == 5.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 1.0) == 100.0
