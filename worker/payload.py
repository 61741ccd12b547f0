"""The payload of one chunk job: the rows with their fences (id, attempt), as plain JSON types.

Plain types rather than pickled dataclasses, so a job enqueued by one release of sous can be
read by the next one. The text travels with the fence so the worker needs no extra read;
the fence (id, attempt) is what every write is conditioned on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.queue import ClaimedRow, RowId, row_id

PAYLOAD_VERSION = 1


def row_to_dict(row: ClaimedRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "attempt": row.attempt,
        "raw_name": row.raw_name,
        "cleaned_name": row.cleaned_name,
        "raw_unit": row.raw_unit,
        "source": row.source,
        "needs_ingredient_review": row.needs_ingredient_review,
        "needs_unit_review": row.needs_unit_review,
        "created_at": row.created_at.isoformat(),
        "processing_started_at": row.processing_started_at.isoformat(),
    }


def row_from_dict(d: dict[str, Any]) -> ClaimedRow:
    return ClaimedRow(
        id=row_id(d["id"]),
        attempt=int(d["attempt"]),
        raw_name=d.get("raw_name"),
        cleaned_name=d.get("cleaned_name"),
        raw_unit=d.get("raw_unit"),
        source=d.get("source") or "scraper",
        needs_ingredient_review=bool(d.get("needs_ingredient_review", True)),
        needs_unit_review=bool(d.get("needs_unit_review", False)),
        created_at=datetime.fromisoformat(d["created_at"]),
        processing_started_at=datetime.fromisoformat(d["processing_started_at"]),
    )


def shadow_row(record: dict[str, Any]) -> ClaimedRow:
    """A pending row read (not claimed) by a dry run: `attempt` is its unchanged attempt_count
    and `processing_started_at` is when the dry run read it."""
    return ClaimedRow.from_record({**record, "processing_started_at": datetime.now(UTC)})


@dataclass(frozen=True)
class ChunkPayload:
    rows: list[ClaimedRow]
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"v": PAYLOAD_VERSION, "dry_run": self.dry_run, "rows": [row_to_dict(r) for r in self.rows]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkPayload:
        if data.get("v") != PAYLOAD_VERSION:
            raise ValueError(f"unknown chunk payload version {data.get('v')!r}")
        return cls(rows=[row_from_dict(d) for d in data["rows"]], dry_run=bool(data.get("dry_run")))

    @property
    def fences(self) -> list[tuple[RowId, int]]:
        return [(r.id, r.attempt) for r in self.rows]
