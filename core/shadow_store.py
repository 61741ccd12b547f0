"""ingredient_match_shadow: DRY_RUN answers, and how they compare with the live outcomes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from core import db
from core.queue import ClaimedRow
from core.resolution import Resolution


def select_unshadowed(
    conn: sa.Connection, *, limit: int, source: str, review_mode: str, model: str, prompt_version: str
) -> list[dict[str, Any]]:
    """Pending rows with no shadow answer for this model and prompt version (read, not claimed)."""
    params = {
        "limit": limit,
        "source": source,
        "review_mode": review_mode,
        "model": model,
        "prompt_version": prompt_version,
    }
    return db.fetch_all(conn, "dispatch_shadow_select", params)


def insert(
    conn: sa.Connection,
    answers: Sequence[tuple[ClaimedRow, Resolution]],
    *,
    latency_ms: int,
    model: str,
    prompt_version: str,
) -> None:
    """Writes the shadow answers of these rows, one per row and attempt."""
    rows = [
        {"queue_id": row.id, "attempt": row.attempt, **answer.to_row(), "latency_ms": latency_ms}
        for row, answer in answers
    ]
    params = {"rows": json.dumps(rows, default=str), "model": model, "prompt_version": prompt_version}
    db.execute(conn, "dispatch_shadow_insert", params)


def report_rows(conn: sa.Connection) -> list[dict[str, Any]]:
    """Each shadowed row's latest dry-run answer (shadow_* keys) beside the live row as a dict
    (`live`), whichever of the app's columns hold the nightly job's answers."""
    return db.fetch_all(conn, "shadow_report_rows")
