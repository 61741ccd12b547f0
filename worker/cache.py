"""The canonical-name cache: normalized query -> answer, per model id and prompt version.

Read before the model is asked and filled after; only settled answers (resolved, rejected)
are cached, never failures, so a flaky provider is asked again next time. A rejection is
cached only when the rules reject the line too: a model's wrong "not food" must not be served
from the cache for ever (the resolver already refuses such answers; this is the last check).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from core import cache_store
from model.ingredients import IngredientAnswer
from model.rules import resolve_with_rules

from .chunking import MAX_CACHE_KEY_CHARS


def cacheable(key: str) -> bool:
    return 0 < len(key) <= MAX_CACHE_KEY_CHARS


def lookup(
    conn: sa.Connection, keys: Sequence[str], *, model: str, prompt_version: str
) -> dict[str, IngredientAnswer]:
    """Answers already known for these keys (and counts the hits)."""
    wanted = sorted({k for k in keys if cacheable(k)})
    if not wanted:
        return {}
    records = cache_store.read(conn, wanted, model=model, prompt_version=prompt_version)
    if records:
        hits = sorted(r["normalized_name"] for r in records)
        cache_store.touch(conn, hits, model=model, prompt_version=prompt_version)
    out: dict[str, IngredientAnswer] = {}
    for rec in records:
        key = rec["normalized_name"]
        out[key] = IngredientAnswer(
            key=key,
            status=rec["status"],
            canonical_name=rec["canonical_name"],
            quantity=None if rec["resolved_quantity"] is None else float(rec["resolved_quantity"]),
            unit=rec["resolved_unit"],
            confidence=float(rec["confidence"] or 0.0),
            provider=rec["provider"] or "cache",
            reason=rec["reason"],
        )
    return out


def store(
    conn: sa.Connection, answers: dict[str, IngredientAnswer], *, model: str, prompt_version: str
) -> int:
    """Caches the settled answers; returns how many were written.

    Only answers from the provider the key names are kept: while the local model is down its
    chunks are answered by a fallback (often rules), and those answers must not be served as
    the local model's once it is back.
    """
    producer = model.split(":", 1)[0]
    rows = [
        {
            "normalized_name": key,
            "status": a.status,
            "canonical_name": a.canonical_name,
            "resolved_unit": a.unit,
            "resolved_quantity": a.quantity,
            "confidence": a.confidence,
            "provider": a.provider,
            "reason": a.reason,
        }
        for key, a in sorted(answers.items())
        if a.status in ("resolved", "rejected")
        and cacheable(key)
        and a.provider == producer
        and (a.status == "resolved" or rules_reject(key))
    ]
    if rows:
        cache_store.store(conn, rows, model=model, prompt_version=prompt_version)
    return len(rows)


def rules_reject(key: str) -> bool:
    """The rules reject the line of this cache key (its text, without the raw-unit suffix)."""
    text = key.split(" |unit=", 1)[0]
    return resolve_with_rules(text).status == "rejected"
