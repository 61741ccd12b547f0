"""Runs a plan inside the migration's transaction and undoes it on the downgrade.

Every step's undo statement is recorded in sous_schema_changes as it is applied; the downgrade
runs them newest first, so what sous created is dropped, what it added is removed, what it
renamed gets its name back and a function it replaced gets the app's definition and ACL back.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from core import db
from core.adoption import catalog, plan
from core.adoption.functions import ALL as FUNCTIONS
from core.adoption.spec import INTERNAL_TABLES, LOG_TABLE, MENU_JOBS, PLANS_VIEW, PROFILES, QUEUE
from core.errors import SousError

log = logging.getLogger(__name__)

TABLES = [QUEUE.name, PROFILES.name, MENU_JOBS.name, "ocr_jobs", LOG_TABLE, PLANS_VIEW, "alembic_version"] + [
    t.name for t in INTERNAL_TABLES
]


LOCK_TIMEOUT_SECONDS = 10


class AdoptionRefused(SousError):
    """The database holds a table sous cannot work with; nothing was changed."""

    code = "ADOPTION_REFUSED"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def current_plan(conn: sa.Connection) -> plan.Plan:
    """What an upgrade would do to this database now (reads only)."""
    found = catalog.read(conn, TABLES, [f.name for f in FUNCTIONS])
    return plan.build(conn, found)


def _run(conn: sa.Connection, sql: str) -> None:
    # The raw DB-API cursor without parameters: statements with % (RAISE formats) pass as they
    # are, and several statements may travel in one string.
    cursor: Any = conn.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def upgrade(conn: sa.Connection, revision: str) -> plan.Plan:
    """Plans and applies in the caller's transaction; refuses (changing nothing) on problems."""
    db.execute(conn, "adopt_lock")
    db.execute(conn, "adopt_lock_timeout", {"seconds": LOCK_TIMEOUT_SECONDS})
    todo = current_plan(conn)
    if todo.problems:
        raise AdoptionRefused(todo.problems)
    for step in todo.steps:
        _run(conn, step.sql)
        db.execute(
            conn,
            "adopt_log_insert",
            {"revision": revision, "action": step.action, "summary": step.summary, "undo": step.undo},
        )
    log.info("schema_adopted", extra={"revision": revision, "steps": len(todo.steps)})
    return todo


def _log_exists(conn: sa.Connection) -> bool:
    return any(r["name"] == LOG_TABLE for r in db.fetch_all(conn, "adopt_relations"))


def downgrade(conn: sa.Connection, revision: str | None = None) -> int:
    """Undoes the recorded steps (of one revision, or all), newest first; returns how many ran."""
    db.execute(conn, "adopt_lock")
    if not _log_exists(conn):
        log.warning("schema_undo_missing", extra={"table": LOG_TABLE})
        return 0
    steps = db.fetch_all(conn, "adopt_log_read", {"revision": revision})
    for step in steps:
        if step["undo"]:
            _run(conn, step["undo"])
    if revision is not None and _log_exists(conn):
        db.execute(conn, "adopt_log_forget", {"revision": revision})
    log.info("schema_restored", extra={"revision": revision, "steps": len(steps)})
    return len(steps)


def drop_empty_version_table(conn: sa.Connection) -> None:
    """After a downgrade to base: alembic keeps its (now empty) version table; the app's schema
    had none, so it goes too."""
    exists = db.fetch_value(conn, "migrate_version_table_exists")
    if exists and not db.fetch_value(conn, "migrate_version_count"):
        db.execute(conn, "migrate_drop_version_table")
