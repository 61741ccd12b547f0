"""ingredient_canonical_cache rows, keyed by (normalized name, model, prompt version).

What is cached is worker/cache.py's business; this module reads and writes the table, each
answer a Resolution (core/resolution.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

from core import db
from core.resolution import Resolution


def read(
    conn: sa.Connection, names: Sequence[str], *, model: str, prompt_version: str
) -> dict[str, Resolution]:
    """The cached answers among `names` (a plain read: no row locks)."""
    params = {"names": json.dumps(list(names)), "model": model, "prompt_version": prompt_version}
    return {
        rec["normalized_name"]: Resolution.from_row({**rec, "provider": rec["provider"] or "cache"})
        for rec in db.fetch_all(conn, "dispatch_cache_read", params)
    }


def touch(conn: sa.Connection, names: Sequence[str], *, model: str, prompt_version: str) -> None:
    """Counts a hit on each of `names` (best effort: rows another chunk is counting are skipped)."""
    params = {"names": json.dumps(list(names)), "model": model, "prompt_version": prompt_version}
    db.execute(conn, "dispatch_cache_touch", params)


def store(
    conn: sa.Connection, answers: Sequence[tuple[str, Resolution]], *, model: str, prompt_version: str
) -> None:
    """Upserts (normalized name, answer) pairs."""
    rows = [{"normalized_name": name, **answer.to_row()} for name, answer in answers]
    params = {"rows": json.dumps(rows, default=str), "model": model, "prompt_version": prompt_version}
    db.execute(conn, "dispatch_cache_store", params)
