"""queue_runs: one summary row per dispatch cycle (read back by core/observability.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from core import db


def record(conn: sa.Connection, run: Mapping[str, Any]) -> int:
    """Inserts a cycle's summary (the columns of queue_runs; `details` as JSON text); its id."""
    return int(db.fetch_value(conn, "dispatch_run_insert", run))
