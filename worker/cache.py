"""The canonical-name cache: normalized query -> answer, per model id and prompt version.

Read before the model is asked and filled after; only settled answers (resolved, rejected)
are cached, never failures, so a flaky provider is asked again next time. A rejection is
cached only when the rules reject the line too: a model's wrong "not food" must not be served
from the cache for ever (the resolver already refuses such answers; this is the last check).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

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
    found = cache_store.read(conn, wanted, model=model, prompt_version=prompt_version)
    if found:
        cache_store.touch(conn, sorted(found), model=model, prompt_version=prompt_version)
    return {key: IngredientAnswer(key=key, **asdict(answer)) for key, answer in found.items()}


def store(
    conn: sa.Connection, answers: dict[str, IngredientAnswer], *, model: str, prompt_version: str
) -> int:
    """Caches the settled answers; returns how many were written.

    Only answers from the provider the key names are kept: while the local model is down its
    chunks are answered by a fallback (often rules), and those answers must not be served as
    the local model's once it is back.
    """
    producer = model.split(":", 1)[0]
    settled = [
        (key, a)
        for key, a in sorted(answers.items())
        if a.status in ("resolved", "rejected")
        and cacheable(key)
        and a.provider == producer
        and (a.status == "resolved" or rules_reject(key))
    ]
    if settled:
        cache_store.store(conn, settled, model=model, prompt_version=prompt_version)
    return len(settled)


def rules_reject(key: str) -> bool:
    """The rules reject the line of this cache key (its text, without the raw-unit suffix)."""
    text = key.split(" |unit=", 1)[0]
    return resolve_with_rules(text).status == "rejected"
