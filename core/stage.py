"""The rollout stage in force, as the running fleet reports it (never the caller's environment).

Every dispatcher cycle writes a queue_runs row whose `details.stage` says under which
ROLLOUT_STAGE, DRY_RUN, QUEUE_SOURCE, QUEUE_REVIEW_MODE and provider order it ran
(worker/cycle.py). The newest row of each box within FLEET_WINDOW_SECONDS is that box's stage;
with none, the stage is unknown (no dispatcher ran lately), and alerts treat every row as in
scope.
`answering` is the provider of the newest answer written (live or shadow).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from core import db
from core.settings import Settings

FLEET_WINDOW_SECONDS = 3600
SOURCES = ("scraper", "recipe")


@dataclass(frozen=True)
class Stage:
    known: bool  # False: no dispatcher cycle in the window
    rollout_stage: str | None
    dry_run: bool | None
    queue_source: str | None
    review_mode: str | None
    providers: list[str]
    boxes: list[dict[str, Any]] = field(default_factory=list)
    answering: dict[str, Any] | None = None
    mixed: bool = False  # boxes report different stages (a rollout in progress)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def processed_scopes(self) -> set[str] | None:
        """The "source:review_mode" scopes whose pending rows sous is meant to take now (keys of
        Live.oldest_by_scope); None when unknown (every row counts). In a dry run none: rows are
        read for shadow answers and left pending on purpose."""
        if not self.known:
            return None
        scopes: set[str] = set()
        for b in self.boxes:
            if b["dry_run"]:
                continue
            sources = SOURCES if b["queue_source"] in (None, "any") else (b["queue_source"],)
            scopes |= {f"{source}:{b['review_mode'] or 'any'}" for source in sources}
        return scopes


def cycle_details(settings: Settings, providers: list[str]) -> dict[str, Any]:
    """What a dispatcher cycle records about the stage it ran under (queue_runs.details.stage)."""
    return {
        "rollout_stage": settings.rollout_stage,
        "dry_run": settings.dry_run,
        "queue_source": settings.queue_source,
        "review_mode": settings.queue_review_mode,
        "providers": providers,
    }


def fleet_stage(conn: sa.Connection, window_seconds: int = FLEET_WINDOW_SECONDS) -> Stage:
    boxes = []
    for r in db.fetch_all(conn, "stage_fleet_latest", {"seconds": window_seconds}):
        stage = (r["details"] or {}).get("stage") or {}
        boxes.append(
            {
                "box_id": r["box_id"],
                "at": r["finished_at"].isoformat() if r["finished_at"] else None,
                "age_s": None if r["age_s"] is None else round(float(r["age_s"]), 1),
                "rollout_stage": stage.get("rollout_stage"),
                "dry_run": bool(r["dry_run"]),
                "queue_source": stage.get("queue_source"),
                "review_mode": stage.get("review_mode"),
                "providers": list(stage.get("providers") or []),
            }
        )
    last = db.fetch_one(conn, "stage_last_answer")
    answering = None
    if last is not None and last["provider"]:
        answering = {
            "provider": last["provider"],
            "kind": last["kind"],
            "at": last["at"].isoformat(),
            "age_s": round(float(last["age_s"]), 1),
        }
    if not boxes:
        return Stage(False, None, None, None, None, [], [], answering)
    newest = min(boxes, key=lambda b: b["age_s"] if b["age_s"] is not None else float("inf"))
    keys = ("rollout_stage", "dry_run", "queue_source", "review_mode", "providers")
    mixed = any(tuple(str(b[k]) for k in keys) != tuple(str(newest[k]) for k in keys) for b in boxes)
    return Stage(
        True,
        newest["rollout_stage"],
        newest["dry_run"],
        newest["queue_source"],
        newest["review_mode"],
        newest["providers"],
        boxes,
        answering,
        mixed,
    )


def unknown() -> Stage:
    """When Postgres cannot be read."""
    return Stage(False, None, None, None, None, [])
