"""The RQ job of one ingredient chunk, and the runner the in-process drain shares with it.

A chunk: check the fence (extend the lease of the rows this claim still owns), group rows by
normalized name, serve cache hits, ask the provider chain once per distinct name, fill the
cache, and write every row fenced on its attempt. Rows whose lease was lost are dropped with a
`lease_lost` log. Nothing here raises for bad input: a provider blow-up fails the rows (they
retry until QUEUE_MAX_ATTEMPTS) and junk is answered `rejected` by the chain.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import sqlalchemy as sa

from core import db, queue, shadow_store
from core.queue import ClaimedRow
from core.settings import Settings
from core.stats import percentile
from model.ingredients import PROMPT_VERSION, IngredientAnswer, IngredientQuery, IngredientResolver
from model.metrics import record_cache_lookups

from . import cache
from .chunking import group_by_key
from .context import get_context
from .payload import ChunkPayload

log = logging.getLogger(__name__)

# Set by the worker's first SIGTERM: a chunk that has not reached the model yet hands its rows
# back (release) instead of starting work it may not finish.
_stop_requested = threading.Event()


def request_stop() -> None:
    _stop_requested.set()


def stop_requested() -> bool:
    return _stop_requested.is_set()


class Resolver(Protocol):
    @property
    def model_id(self) -> str: ...

    def estimate_tokens(self, query: IngredientQuery) -> int: ...

    def resolve(self, queries: Sequence[IngredientQuery]) -> list[IngredientAnswer]: ...


def query_for(row: ClaimedRow) -> IngredientQuery:
    return IngredientQuery.of(row.cleaned_name or row.raw_name, row.raw_unit)


def group_key(row: ClaimedRow) -> str:
    """Dedupe and cache key: the normalized name, plus the raw unit when the row has one."""
    q = query_for(row)
    unit = " ".join((row.raw_unit or "").casefold().split())
    return f"{q.key} |unit={unit}" if unit else q.key


@dataclass
class RowCounts:
    """What became of a chunk's rows; a dispatch cycle adds up its chunks' (worker/cycle.py)."""

    resolved: int = 0
    rejected: int = 0
    failed: int = 0
    lease_lost: int = 0
    distinct: int = 0  # distinct names among the rows
    cache_hits: int = 0
    model_queries: int = 0

    def add(self, other: RowCounts) -> None:
        for f in fields(RowCounts):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class ChunkOutcome(RowCounts):
    rows: int = 0
    released: int = 0
    model_ms: float = 0.0
    lag_p50_ms: float | None = None
    lag_p95_ms: float | None = None
    elapsed_ms: float = 0.0
    providers: dict[str, int] = field(default_factory=dict)  # rows answered, by provider

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChunkRunner:
    def __init__(self, engine: sa.Engine, settings: Settings, resolver: Resolver) -> None:
        self.engine = engine
        self.settings = settings
        self.resolver = resolver

    def run(self, payload: ChunkPayload) -> ChunkOutcome:
        started = time.monotonic()
        out = ChunkOutcome(rows=len(payload.rows))
        lags = [(r.processing_started_at - r.created_at).total_seconds() * 1000 for r in payload.rows]
        out.lag_p50_ms, out.lag_p95_ms = percentile(lags, 0.5), percentile(lags, 0.95)
        rows = payload.rows if payload.dry_run else self._still_owned(payload.rows, out)
        if rows and stop_requested() and not payload.dry_run:
            with db.transaction(self.engine) as conn:
                out.released = len(queue.release_rows(conn, rows, reason="worker shutting down"))
            log.info("chunk_released", extra={"rows": out.released})
            return out
        if rows and payload.dry_run:
            answers = self._answer(rows, out)
            self._write_shadow(rows, answers, started)
            out.resolved = sum(1 for r in rows if answers[group_key(r)].status == "resolved")
        elif rows:
            with LeaseKeeper(self.engine, rows, self.settings.queue_lease_seconds):
                answers = self._answer(rows, out)
            self._write(rows, answers, out)
        out.elapsed_ms = (time.monotonic() - started) * 1000
        log.info("chunk_done", extra={"dry_run": payload.dry_run, **out.as_dict()})
        return out

    def _still_owned(self, rows: list[ClaimedRow], out: ChunkOutcome) -> list[ClaimedRow]:
        """The fence at start: renew the lease of rows this claim still owns, drop the rest."""
        with db.transaction(self.engine) as conn:
            owned = queue.extend_lease(conn, rows, self.settings.queue_lease_seconds, op="start")
        out.lease_lost += len(rows) - len(owned)
        return [r for r in rows if r.id in owned]

    def _answer(self, rows: list[ClaimedRow], out: ChunkOutcome) -> dict[str, IngredientAnswer]:
        groups = group_by_key(rows, group_key, dedupe=self.settings.queue_dedupe_enabled)
        out.distinct = len({g.key for g in groups})
        model_id = self.resolver.model_id
        answers: dict[str, IngredientAnswer] = {}
        if self.settings.ingredient_cache_enabled:
            with db.transaction(self.engine) as conn:
                answers = cache.lookup(
                    conn, [g.key for g in groups], model=model_id, prompt_version=PROMPT_VERSION
                )
            out.cache_hits = len(answers)
        misses = [g for g in groups if g.key not in answers]
        if self.settings.ingredient_cache_enabled:
            record_cache_lookups(out.cache_hits, len(misses))
        if not misses:
            return answers
        queries = [query_for(g.items[0]) for g in misses]
        out.model_queries = len(queries)
        fresh: dict[str, IngredientAnswer] = {}
        asked = time.monotonic()
        try:
            results = self.resolver.resolve(queries)
            if len(results) != len(queries):
                raise ValueError(f"resolver answered {len(results)} of {len(queries)} queries")
            fresh = {g.key: a for g, a in zip(misses, results, strict=True)}
        except Exception as exc:  # a chain failure must fail rows, never kill the worker
            log.exception("chunk_resolve_error", extra={"queries": len(queries)})
            reason = f"resolver error: {type(exc).__name__}: {exc}"
            fresh = {g.key: IngredientAnswer.failed(g.key, reason) for g in misses}
        out.model_ms = round((time.monotonic() - asked) * 1000, 1)
        if self.settings.ingredient_cache_enabled:
            with db.transaction(self.engine) as conn:
                cache.store(conn, fresh, model=model_id, prompt_version=PROMPT_VERSION)
        answers.update(fresh)
        return answers

    def _write(self, rows: list[ClaimedRow], answers: dict[str, IngredientAnswer], out: ChunkOutcome) -> None:
        done: list[tuple[ClaimedRow, IngredientAnswer]] = []
        rejected: list[tuple[ClaimedRow, str, str]] = []
        failed: list[tuple[ClaimedRow, str]] = []
        for row in rows:
            a = answers[group_key(row)]
            out.providers[a.provider] = out.providers.get(a.provider, 0) + 1
            if a.status == "resolved" and a.canonical_name:
                done.append((row, a))
            elif a.status == "rejected":
                rejected.append((row, a.reason or "rejected", a.provider))
            else:
                failed.append((row, a.reason or "no answer"))
        with db.transaction(self.engine) as conn:
            written = queue.complete_rows(conn, done)
            written_rej = queue.reject_rows(conn, rejected)
            written_fail = queue.fail_rows(conn, failed, max_attempts=self.settings.queue_max_attempts)
        out.resolved, out.rejected, out.failed = len(written), len(written_rej), len(written_fail)
        out.lease_lost += len(rows) - out.resolved - out.rejected - out.failed

    def _write_shadow(
        self, rows: list[ClaimedRow], answers: dict[str, IngredientAnswer], started: float
    ) -> None:
        latency_ms = int((time.monotonic() - started) * 1000)
        shadow = [(row, answers[group_key(row)]) for row in rows]
        with db.transaction(self.engine) as conn:
            shadow_store.insert(
                conn,
                shadow,
                latency_ms=latency_ms,
                model=self.resolver.model_id,
                prompt_version=PROMPT_VERSION,
            )


class LeaseKeeper:
    """Renews the rows' lease every third of it while the model works on them.

    A slow model (Qwen3-8B bf16 on a Strix Halo writes ~9 tokens/s per stream) can take longer
    than one lease for a chunk. The renewal stops with this process, so a killed worker's rows
    still come back one lease after its last heartbeat. Rows another claim took over are
    dropped from the renewal (and their result will be dropped by the fenced write).
    """

    def __init__(self, engine: sa.Engine, rows: list[ClaimedRow], lease_seconds: int) -> None:
        self.engine = engine
        self.rows = rows
        self.lease_seconds = lease_seconds
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(0.5, self.lease_seconds / 3)
        while self.rows and not self._done.wait(interval):
            try:
                with db.transaction(self.engine) as conn:
                    owned = queue.extend_lease(conn, self.rows, self.lease_seconds, op="renew")
            except Exception:
                log.warning("lease_renew_error", exc_info=True)
                continue
            self.rows = [r for r in self.rows if r.id in owned]


_resolver: tuple[int, IngredientResolver] | None = None


def process_resolver(settings: Settings) -> IngredientResolver:
    """One resolver per process (its HTTP clients and cool-down state live across jobs)."""
    global _resolver  # noqa: PLW0603 - per-process cache, rebuilt after a fork
    if _resolver is None or _resolver[0] != os.getpid():
        _resolver = (os.getpid(), IngredientResolver.from_settings(settings))
    return _resolver[1]


def process_chunk(payload: dict[str, Any]) -> dict[str, Any]:
    """RQ entry point (worker.tasks.process_chunk): one chunk of claimed or shadowed rows."""
    ctx = get_context()
    runner = ChunkRunner(ctx.engine, ctx.settings, process_resolver(ctx.settings))
    return runner.run(ChunkPayload.from_json(payload)).as_dict()
