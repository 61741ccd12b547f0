"""The values the ingredient resolver takes and gives; shared by the rules provider and the chain."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

from core.resolution import Resolution, Status

__all__ = ["MAX_KEY_CHARS", "IngredientAnswer", "IngredientQuery", "Status", "normalize_name"]

# Longer keys are hashed: the key is the canonical-cache primary key, and btree index entries
# have a size limit (a 10 kB junk string must not break the cache write).
MAX_KEY_CHARS = 200
# The most of an error a failed answer carries as its reason (it becomes the row's last_error).
REASON_CHARS = 1000


def normalize_name(text: str | None) -> str:
    """The dedupe and cache key: NFKC, case-folded, whitespace collapsed."""
    if not text:
        return ""
    key = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    if len(key) > MAX_KEY_CHARS:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


@dataclass(frozen=True)
class IngredientQuery:
    key: str  # normalize_name(cleaned_name or raw_name): dedupe + cache key
    text: str  # what the model sees (cleaned_name, else raw_name; may be junk/empty)
    raw_unit: str | None = None

    @classmethod
    def of(cls, text: str | None, raw_unit: str | None = None) -> IngredientQuery:
        return cls(key=normalize_name(text), text=text or "", raw_unit=raw_unit)


@dataclass(frozen=True)
class IngredientAnswer(Resolution):
    """The answer to one query: what is stored (core.resolution.Resolution) and the query's key."""

    key: str

    @classmethod
    def rejected(cls, key: str, reason: str | None, provider: str) -> IngredientAnswer:
        """Not an ingredient: terminal, with the reason."""
        return cls(
            key=key, status="rejected", canonical_name=None, quantity=None, unit=None,
            confidence=1.0, provider=provider, reason=reason,
        )  # fmt: skip

    @classmethod
    def failed(cls, key: str, error: str) -> IngredientAnswer:
        """Nothing answered: the row is tried again (the error is kept, shortened)."""
        return cls(
            key=key, status="failed", canonical_name=None, quantity=None, unit=None,
            confidence=0.0, provider="none", reason=error[:REASON_CHARS],
        )  # fmt: skip
