"""Operations on ingredient_match_queue: claim, complete, fail, reject, release, requeue.

Every write after a claim is fenced on (id, attempt_count) and returns the ids it wrote: a
worker whose lease was lost updates nothing, the write logs `lease_lost` for each row it did not
write, and the caller drops its result for those rows (nothing raises).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import db
from core.errors import STORED_ERROR_CHARS, DatabaseError, InvalidInput
from core.resolution import Resolution

log = logging.getLogger(__name__)

# invalid_text_representation, numeric_value_out_of_range: "abc" or 2**70 for a bigint id.
INVALID_ID_STATES = frozenset({"22P02", "22003"})

# A queue row's id as sous carries it: an int for bigint/integer ids, a str for uuid or text ids
# (the app's table decides; JSON payloads, RQ job ids and logs carry either).
RowId = int | str


def row_id(value: Any) -> RowId:
    """The id as the database returned it, in the form sous carries it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value)


@dataclass(frozen=True)
class ClaimedRow:
    id: RowId
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
            id=row_id(rec["id"]),
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
    def fence(self) -> dict[str, RowId]:
        """The (id, attempt) every write is conditioned on, keyed by the queue's column names."""
        return {"id": self.id, "attempt_count": self.attempt}


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


def complete_rows(conn: sa.Connection, results: Sequence[tuple[ClaimedRow, Resolution]]) -> set[RowId]:
    """Writes resolved answers; returns the ids written. Rows missing from it had lost their lease."""
    if not results:
        return set()
    payload = _rows_param({**row.fence, **res.to_row()} for row, res in results)
    written = {row_id(r["id"]) for r in db.fetch_all(conn, "complete_rows", {"rows": payload})}
    _log_lost("complete", [row for row, _ in results], written)
    return written


def reject_rows(conn: sa.Connection, rejections: Sequence[tuple[ClaimedRow, str, str]]) -> set[RowId]:
    """(row, reason, provider) -> rejected: terminal, never retried."""
    if not rejections:
        return set()
    payload = _rows_param(
        {**row.fence, "last_error": reason[:STORED_ERROR_CHARS], "provider": provider}
        for row, reason, provider in rejections
    )
    written = {row_id(r["id"]) for r in db.fetch_all(conn, "reject_rows", {"rows": payload})}
    _log_lost("reject", [row for row, _, _ in rejections], written)
    return written


def fail_rows(
    conn: sa.Connection, failures: Sequence[tuple[ClaimedRow, str]], *, max_attempts: int
) -> dict[RowId, str]:
    """Back to pending, or failed once attempts reach max_attempts; returns id -> new status."""
    if not failures:
        return {}
    payload = _rows_param({**row.fence, "last_error": error[:STORED_ERROR_CHARS]} for row, error in failures)
    out = {
        row_id(r["id"]): r["status"]
        for r in db.fetch_all(conn, "fail_rows", {"rows": payload, "max_attempts": max_attempts})
    }
    _log_lost("fail", [row for row, _ in failures], set(out))
    return out


def release_rows(conn: sa.Connection, rows: Sequence[ClaimedRow], reason: str = "released") -> set[RowId]:
    """Hands rows back to pending before their lease runs out; returns the ids released."""
    if not rows:
        return set()
    payload = _rows_param(row.fence for row in rows)
    released = {
        row_id(r["id"]) for r in db.fetch_all(conn, "release_rows", {"rows": payload, "reason": reason})
    }
    _log_lost("release", rows, released)
    return released


def extend_lease(
    conn: sa.Connection, rows: Sequence[ClaimedRow], lease_seconds: int, *, op: str = "extend"
) -> set[RowId]:
    """Renews the lease of the rows this claim still owns; returns their ids (`op` names the
    step in the `lease_lost` log of the others)."""
    if not rows:
        return set()
    payload = _rows_param(row.fence for row in rows)
    kept = {
        row_id(r["id"])
        for r in db.fetch_all(conn, "extend_lease", {"rows": payload, "lease_seconds": lease_seconds})
    }
    _log_lost(op, rows, kept)
    return kept


def insert_rows(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> list[RowId]:
    """Inserts queue rows (keys: raw_name, cleaned_name, raw_unit, source, recipe_ingredient_id)."""
    if not rows:
        return []
    try:
        found = db.fetch_all(conn, "insert_rows", {"rows": _rows_param(rows)})
    except DatabaseError as exc:
        if _sqlstate(exc) in INVALID_ID_STATES:  # "abc" for an integer recipe_ingredient_id
            raise InvalidInput(f"a row does not fit ingredient_match_queue: {exc}") from None
        raise
    return [row_id(r["id"]) for r in found]


def _sqlstate(exc: DatabaseError) -> str | None:
    state = getattr(getattr(exc.__cause__, "orig", None), "sqlstate", None)
    return None if state is None else str(state)


def get_row(conn: sa.Connection, raw_id: str) -> dict[str, Any] | None:
    """One queue row by its id as text; an id the table's id type cannot hold is not found."""
    try:
        with conn.begin_nested():
            row = db.fetch_one(conn, "get_row", {"id": raw_id})
    except DatabaseError as exc:
        if _sqlstate(exc) in INVALID_ID_STATES:
            return None
        raise
    if row is not None:
        row["id"] = row_id(row["id"])
    return row


def _log_lost(op: str, rows: Sequence[ClaimedRow], written: set[RowId]) -> None:
    for row in rows:
        if row.id not in written:
            log.warning("lease_lost", extra={"op": op, "row_id": row.id, "attempt": row.attempt})


def status_counts(conn: sa.Connection, ids: Sequence[RowId]) -> dict[str, int]:
    """How many of the rows `ids` (of the table's id type) are in each status."""
    params = {"ids": json.dumps(list(ids))}
    return {str(r["status"]): int(r["n"]) for r in db.fetch_all(conn, "demo_status_counts", params)}


def pending_count(conn: sa.Connection, source: str = "any") -> int:
    """Pending rows of `source` ('any': all sources)."""
    return int(db.fetch_value(conn, "dispatch_pending_count", {"source": source}) or 0)
