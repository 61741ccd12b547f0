"""Operator actions on queue rows (retry failed, requeue a stuck lease, discard), each written
to ops_audit_log in the same transaction as the change, so an action is never half recorded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from core import db
from core.errors import DatabaseError, InvalidInput
from core.queue import RowId, row_id

ACTIONS = {
    "retry": "ops_retry_failed",  # failed -> pending, attempts reset
    "requeue": "ops_requeue_processing",  # processing -> pending (a stuck lease)
    "discard": "ops_discard",  # pending/processing/failed -> rejected
}
MAX_IDS = 1000
REASON_CHARS = 500  # how much of an operator's reason the audit log keeps


@dataclass(frozen=True)
class ActionResult:
    action: str
    changed: list[RowId]  # rows the action applied to
    skipped: list[RowId]  # rows not in a status the action applies to (or not found)
    audit_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply(
    conn: sa.Connection, action: str, ids: list[RowId], actor: str, reason: str | None = None
) -> ActionResult:
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    # Ids travel as text and are read as the queue's own id type (bigint or uuid) in SQL.
    wanted = sorted({str(i) for i in ids})
    if not wanted or len(wanted) > MAX_IDS:
        raise InvalidInput(f"ids: between 1 and {MAX_IDS} row ids")
    params: dict[str, Any] = {"ids": wanted}
    if action == "discard":
        params["reason"] = (reason or "no reason given")[:REASON_CHARS]
    try:
        with conn.begin_nested():
            rows = db.fetch_all(conn, ACTIONS[action], params)
    except DatabaseError as exc:
        raise InvalidInput("ids: not ids of this queue") from exc
    changed = sorted((row_id(r["id"]) for r in rows), key=str)
    done = {str(i) for i in changed}
    audit = db.fetch_one(
        conn,
        "ops_audit_insert",
        {
            "actor": actor,
            "action": action,
            "row_ids": wanted,
            "changed_ids": sorted(done),
            "details": json.dumps({"reason": reason} if reason else {}),
        },
    )
    assert audit is not None
    skipped = sorted({i for i in ids if str(i) not in done}, key=str)
    return ActionResult(action, changed, skipped, int(audit["id"]))


def recent(conn: sa.Connection, limit: int = 20) -> list[dict[str, Any]]:
    return [
        {
            "id": int(r["id"]),
            "at": r["at"].isoformat(),
            "actor": r["actor"],
            "action": r["action"],
            "rows": list(r["row_ids"]),  # as text: the queue's ids may be bigint or uuid
            "changed": list(r["changed_ids"]),
            "details": r["details"],
        }
        for r in db.fetch_all(conn, "ops_audit_recent", {"limit": limit})
    ]


def stuck_rows(conn: sa.Connection, limit: int = 10) -> list[dict[str, Any]]:
    return [
        {
            "id": row_id(r["id"]),
            "source": r["source"],
            "name": r["cleaned_name"],
            "attempts": int(r["attempt_count"]),
            "resolver": r["resolver"],
            "lease_expired_at": r["processing_lease_expires_at"].isoformat(),
        }
        for r in db.fetch_all(conn, "obs_stuck_rows", {"limit": limit})
    ]
