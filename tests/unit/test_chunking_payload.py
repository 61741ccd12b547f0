"""Chunk payloads: plain JSON types that round-trip the fence (id, attempt) and the text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.queue import ClaimedRow
from worker.payload import ChunkPayload
from worker.tasks import group_key


def row(row_id: int, name: str | None, unit: str | None = None, attempt: int = 1) -> ClaimedRow:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    return ClaimedRow(row_id, attempt, name, name, unit, "scraper", True, False, now, now)


def test_payload_round_trips_through_json() -> None:
    payload = ChunkPayload([row(1, "Onion"), row(2, None, attempt=3)], dry_run=True)
    back = ChunkPayload.from_json(json.loads(json.dumps(payload.to_json())))
    assert back == payload
    assert back.fences == [(1, 1), (2, 3)]


def test_unknown_payload_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        ChunkPayload.from_json({"v": 99, "rows": []})


def test_group_key_normalizes_name_and_keeps_the_unit_apart() -> None:
    assert group_key(row(1, "  Red  ONION ")) == group_key(row(2, "red onion"))
    assert group_key(row(1, "flour", "cup")) != group_key(row(2, "flour"))
    assert group_key(row(1, "flour", " Cup")) == group_key(row(2, "FLOUR", "cup"))
    assert len(group_key(row(1, "x" * 10_000))) < 300  # long junk still makes a short key
