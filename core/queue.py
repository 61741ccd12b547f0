"""Operations on ingredient_match_queue: claim, complete, fail, reject, release, requeue.

Every write after a claim is fenced on (id, attempt_count): a worker whose lease was lost
updates nothing, and callers log `lease_lost` and drop their result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from core import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    attempt: int
    raw_name: str | None
    cleaned_name: str | None
    raw_unit: str | None
    source: str
    needs_ingredient_review: bool
    needs_unit_review: bool
    created_at: datetime
    processing_started_at: datetime

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> ClaimedRow:
        return cls(
            id=rec["id"],
            attempt=rec["attempt_count"],
            raw_name=rec["raw_name"],
            cleaned_name=rec["cleaned_name"],
            raw_unit=rec["raw_unit"],
            source=rec["source"],
            needs_ingredient_review=rec["needs_ingredient_review"],
            needs_unit_review=rec["needs_unit_review"],
            created_at=rec["created_at"],
            processing_started_at=rec["processing_started_at"],
        )

    @property
    def fence(self) -> dict[str, int]:
        return {"id": self.id, "attempt": self.attempt}


@dataclass(frozen=True)
class Resolution:
    """What a provider answered for one row."""

    canonical_name: str
    unit: str | None
    quantity: Decimal | float | None
    confidence: float
    provider: str


def _rows_param(items: Iterable[dict[str, Any]]) -> str:
    return json.dumps(list(items), default=str)


def set_max_attempts(conn: sa.Connection, max_attempts: int) -> None:
    """Makes the SQL functions of this transaction use QUEUE_MAX_ATTEMPTS."""
    db.execute(conn, "set_max_attempts", {"max_attempts": max_attempts})


def claim_rows(
    conn: sa.Connection,
    *,
    limit: int,
    resolver: str,
    lease_seconds: int,
    review_mode: str = "any",
    source: str = "any",
    max_attempts: int | None = None,
) -> list[ClaimedRow]:
    if max_attempts is not None:
        set_max_attempts(conn, max_attempts)
    records = db.fetch_all(
        conn,
        "claim_rows",
        {
            "limit": limit,
            "resolver": resolver,
            "lease_seconds": lease_seconds,
            "review_mode": review_mode,
            "source": source,
        },
    )
    rows = [ClaimedRow.from_record(r) for r in records]
    rows.sort(key=lambda r: (r.created_at, r.id))
    return rows


def requeue_expired(
    conn: sa.Connection, *, limit: int, error: str = "lease expired", max_attempts: int | None = None
) -> int:
    if max_attempts is not None:
        set_max_attempts(conn, max_attempts)
    return int(db.fetch_value(conn, "requeue_expired", {"limit": limit, "error": error}) or 0)


def complete_rows(conn: sa.Connection, results: Sequence[tuple[ClaimedRow, Resolution]]) -> set[int]:
    """Writes results; returns the ids written. Rows missing from it had lost their lease."""
    if not results:
        return set()
    payload = _rows_param(
        {
            **row.fence,
            "canonical_name": res.canonical_name,
            "resolved_unit": res.unit,
            "resolved_quantity": None if res.quantity is None else str(res.quantity),
            "confidence": res.confidence,
            "provider": res.provider,
        }
        for row, res in results
    )
    written = {r["id"] for r in db.fetch_all(conn, "complete_rows", {"rows": payload})}
    _log_lost("complete", [row for row, _ in results], written)
    return written


def reject_rows(conn: sa.Connection, rejections: Sequence[tuple[ClaimedRow, str, str]]) -> set[int]:
    """(row, reason, provider) -> rejected: terminal, never retried."""
    if not rejections:
        return set()
    payload = _rows_param(
        {**row.fence, "reason": reason[:1000], "provider": provider} for row, reason, provider in rejections
    )
    written = {r["id"] for r in db.fetch_all(conn, "reject_rows", {"rows": payload})}
    _log_lost("reject", [row for row, _, _ in rejections], written)
    return written


def fail_rows(
    conn: sa.Connection, failures: Sequence[tuple[ClaimedRow, str]], *, max_attempts: int
) -> dict[int, str]:
    """Back to pending, or failed once attempts reach max_attempts; returns id -> new status."""
    if not failures:
        return {}
    payload = _rows_param({**row.fence, "error": error[:2000]} for row, error in failures)
    out = {
        r["id"]: r["status"]
        for r in db.fetch_all(conn, "fail_rows", {"rows": payload, "max_attempts": max_attempts})
    }
    _log_lost("fail", [row for row, _ in failures], set(out))
    return out


def release_rows(conn: sa.Connection, rows: Sequence[ClaimedRow], reason: str = "released") -> set[int]:
    if not rows:
        return set()
    payload = _rows_param(row.fence for row in rows)
    return {r["id"] for r in db.fetch_all(conn, "release_rows", {"rows": payload, "reason": reason})}


def extend_lease(conn: sa.Connection, rows: Sequence[ClaimedRow], lease_seconds: int) -> set[int]:
    if not rows:
        return set()
    payload = _rows_param(row.fence for row in rows)
    return {
        r["id"] for r in db.fetch_all(conn, "extend_lease", {"rows": payload, "lease_seconds": lease_seconds})
    }


def insert_rows(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Inserts queue rows (keys: raw_name, cleaned_name, raw_unit, source, recipe_ingredient_id)."""
    if not rows:
        return []
    return [r["id"] for r in db.fetch_all(conn, "insert_rows", {"rows": _rows_param(rows)})]


def _log_lost(op: str, rows: Sequence[ClaimedRow], written: set[int]) -> None:
    for row in rows:
        if row.id not in written:
            log.warning("lease_lost", extra={"op": op, "row_id": row.id, "attempt": row.attempt})


def get_row(conn: sa.Connection, row_id: int) -> dict[str, Any] | None:
    """One queue row, every column; None when there is no such row."""
    return db.fetch_one(conn, "get_row", {"id": row_id})


def status_counts(conn: sa.Connection, ids: Sequence[int]) -> dict[str, int]:
    """How many of the rows `ids` are in each status."""
    return {
        str(r["status"]): int(r["n"]) for r in db.fetch_all(conn, "demo_status_counts", {"ids": list(ids)})
    }


def pending_count(conn: sa.Connection, source: str = "any") -> int:
    """Pending rows of `source` ('any': all sources)."""
    return int(db.fetch_value(conn, "dispatch_pending_count", {"source": source}) or 0)
