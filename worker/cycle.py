"""One dispatch cycle, shared by the dispatcher (chunks go to RQ) and `sous drain` (inline).

requeue expired leases -> re-enqueue lost menu jobs -> ask the fleet how much it can start ->
claim that much (or, under DRY_RUN, read unshadowed pending rows without touching them) ->
group by name and split by token budget -> hand each chunk over -> one queue_runs row and
one JSON log line.

DRY_RUN never calls the claim function (a claim bumps attempt_count and sets a lease, i.e.
changes the row). It reads pending rows without locking, answers them into
ingredient_match_shadow, and that table is the memory of what was shadowed: a row with a
shadow answer for the current model and prompt version is not read again. Expired leases are
not requeued either, so queue rows stay byte-for-byte as they were.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from core import db, jobs, queue, runs, shadow_store, stage
from core.queue import ClaimedRow
from core.settings import Settings
from core.stats import percentile
from model.ingredients import PROMPT_VERSION

from . import menu_task
from .chunking import group_by_key, split_by_budget
from .context import WorkerContext
from .fleet import Fleet
from .payload import ChunkPayload, shadow_row
from .tasks import Resolver, RowCounts, group_key, query_for

log = logging.getLogger(__name__)

REQUEUE_LIMIT = 10_000


@dataclass(kw_only=True)
class CycleReport(RowCounts):
    trigger: str
    dry_run: bool
    requeued: int = 0
    limit: int = 0
    claimed: int = 0
    chunks: int = 0
    enqueue_errors: int = 0
    pending_after: int = 0
    live_workers: int | None = None
    outstanding_chunks: int | None = None
    menu_reenqueued: int | None = None
    lag_p50_ms: float | None = None
    lag_p95_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    duration_ms: float = 0.0
    chunk_latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def backlog(self) -> bool:
        """The claim was full: more rows are waiting, run the next cycle at once."""
        return self.limit > 0 and self.claimed >= self.limit

    @property
    def fleet_full(self) -> bool:
        return self.limit == 0 and self.pending_after > 0

    def log_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.pop("chunk_latencies")
        return fields


class CycleRunner:
    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        resolver: Resolver,
        fleet: Fleet,
        ctx: WorkerContext | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.resolver = resolver
        self.fleet = fleet
        self.ctx = ctx  # None in `sous drain`: no Redis, so no menu re-enqueue either
        self.resolver_name = f"sous:{settings.box_id}"

    def run(self, trigger: str, limit: int | None = None) -> CycleReport:
        s = self.settings
        started_at, t0 = datetime.now(UTC), time.monotonic()
        report = CycleReport(trigger=trigger, dry_run=s.dry_run)
        if not s.dry_run:
            with db.transaction(self.engine) as conn:
                report.requeued = queue.requeue_expired(
                    conn, limit=REQUEUE_LIMIT, max_attempts=s.queue_max_attempts
                )
        report.menu_reenqueued = self._reenqueue_menus()
        cap = self.fleet.capacity()
        report.live_workers, report.outstanding_chunks = cap.live_workers, cap.outstanding_chunks
        report.limit = s.queue_batch_limit if limit is None else limit
        if cap.rows is not None:
            report.limit = min(report.limit, cap.rows)
        rows = self._take(report.limit) if report.limit > 0 else []
        report.claimed = len(rows)
        now = datetime.now(UTC)
        lags = [((r.processing_started_at or now) - r.created_at).total_seconds() * 1000 for r in rows]
        report.lag_p50_ms, report.lag_p95_ms = percentile(lags, 0.5), percentile(lags, 0.95)
        for chunk in self._chunks(rows):
            self._submit(chunk, report)
        report.latency_p50_ms = percentile(report.chunk_latencies, 0.5)
        report.latency_p95_ms = percentile(report.chunk_latencies, 0.95)
        report.duration_ms = (time.monotonic() - t0) * 1000
        self._record(report, started_at)
        log.info("dispatch_cycle", extra=report.log_fields())
        return report

    def _take(self, limit: int) -> list[ClaimedRow]:
        s = self.settings
        with db.transaction(self.engine) as conn:
            if s.dry_run:
                records = shadow_store.select_unshadowed(
                    conn,
                    limit=limit,
                    source=s.queue_source,
                    review_mode=s.queue_review_mode,
                    model=self.resolver.model_id,
                    prompt_version=PROMPT_VERSION,
                )
                return [shadow_row(r) for r in records]
            return queue.claim_rows(
                conn,
                limit=limit,
                resolver=self.resolver_name,
                lease_seconds=s.queue_lease_seconds,
                review_mode=s.queue_review_mode,
                source=s.queue_source,
                max_attempts=s.queue_max_attempts,
            )

    def _chunks(self, rows: list[ClaimedRow]) -> list[list[ClaimedRow]]:
        """Identical names land in the same chunk, so one answer serves all of them."""
        s = self.settings
        groups = group_by_key(rows, group_key, dedupe=s.queue_dedupe_enabled)
        packed = split_by_budget(
            groups,
            lambda g: self.resolver.estimate_tokens(query_for(g.items[0])),
            token_budget=s.queue_token_budget,
            max_items=s.queue_chunk_max_items,
        )
        return [[row for g in chunk for row in g.items] for chunk in packed]

    def _submit(self, rows: list[ClaimedRow], report: CycleReport) -> None:
        s = self.settings
        payload = ChunkPayload(rows=rows, dry_run=s.dry_run)
        job_id = jobs.chunk_job_id(jobs.chunk_prefix(s.dry_run), payload.fences)
        try:
            outcome = self.fleet.submit(payload, job_id)
        except Exception:
            # Redis down or a chunk that blew up inline: hand the rows back now rather than
            # letting them wait for the lease. Postgres stays the truth.
            report.enqueue_errors += 1
            log.exception("chunk_submit_error", extra={"job_id": job_id, "rows": len(rows)})
            if not s.dry_run:
                with db.transaction(self.engine) as conn:
                    queue.release_rows(conn, rows, reason="dispatch: chunk could not be enqueued")
            return
        report.chunks += 1
        if outcome is not None:
            report.add(outcome)
            report.chunk_latencies.append(outcome.elapsed_ms)

    def _reenqueue_menus(self) -> int | None:
        if self.ctx is None:
            return None
        try:
            return menu_task.reenqueue_lost_menu_jobs(self.ctx)
        except Exception:  # the menu side must not stop ingredient dispatch
            log.exception("menu_reenqueue_error")
            return None

    def provider_names(self) -> list[str]:
        """The providers this box asks, in order (a test's stand-in resolver may have none)."""
        chain = getattr(self.resolver, "chain", None)
        names = [p.name for p in chain.providers] if chain is not None else []
        return names + (["rules"] if getattr(self.resolver, "use_rules", False) else [])

    def _record(self, report: CycleReport, started_at: datetime) -> None:
        s = self.settings
        details = {
            k: getattr(report, k)
            for k in (
                "limit",
                "lease_lost",
                "distinct",
                "cache_hits",
                "model_queries",
                "enqueue_errors",
                "live_workers",
                "outstanding_chunks",
                "menu_reenqueued",
                "duration_ms",
            )
        }
        # The stage this cycle ran under: /readyz, the dashboard and `sous status` read it.
        details["stage"] = stage.cycle_details(s, self.provider_names())
        with db.transaction(self.engine) as conn:
            report.pending_after = queue.pending_count(conn, s.queue_source)
            runs.record(
                conn,
                {
                    "started_at": started_at.isoformat(),
                    "box_id": s.box_id,
                    "resolver": self.resolver_name,
                    "trigger": report.trigger,
                    "dry_run": report.dry_run,
                    "requeued": report.requeued,
                    "claimed": report.claimed,
                    "chunks": report.chunks,
                    "resolved": report.resolved,
                    "failed": report.failed,
                    "rejected": report.rejected,
                    "pending_after": report.pending_after,
                    "lag_p50_ms": report.lag_p50_ms,
                    "lag_p95_ms": report.lag_p95_ms,
                    "latency_p50_ms": report.latency_p50_ms,
                    "latency_p95_ms": report.latency_p95_ms,
                    "details": json.dumps(details),
                },
            )
