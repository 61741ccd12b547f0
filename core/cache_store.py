"""ingredient_canonical_cache rows, keyed by (normalized name, model, prompt version).

What is cached and how an answer is rebuilt from a row is worker/cache.py's business; this
module only reads and writes the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from core import db


def read(
    conn: sa.Connection, names: Sequence[str], *, model: str, prompt_version: str
) -> list[dict[str, Any]]:
    """The cached rows among `names` (a plain read: no row locks)."""
    params = {"names": json.dumps(list(names)), "model": model, "prompt_version": prompt_version}
    return db.fetch_all(conn, "dispatch_cache_read", params)


def touch(conn: sa.Connection, names: Sequence[str], *, model: str, prompt_version: str) -> None:
    """Counts a hit on each of `names` (best effort: rows another chunk is counting are skipped)."""
    params = {"names": json.dumps(list(names)), "model": model, "prompt_version": prompt_version}
    db.execute(conn, "dispatch_cache_touch", params)


def store(conn: sa.Connection, rows: Sequence[dict[str, Any]], *, model: str, prompt_version: str) -> None:
    """Upserts cache rows (keys: normalized_name, status, canonical_name, resolved_unit,
    resolved_quantity, confidence, provider, reason)."""
    params = {"rows": json.dumps(list(rows), default=str), "model": model, "prompt_version": prompt_version}
    db.execute(conn, "dispatch_cache_store", params)
