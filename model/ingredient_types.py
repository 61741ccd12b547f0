"""The values the ingredient resolver takes and gives; shared by the rules provider and the chain."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Literal

Status = Literal["resolved", "rejected", "failed"]

# Longer keys are hashed: the key is the canonical-cache primary key, and btree index entries
# have a size limit (a 10 kB junk string must not break the cache write).
MAX_KEY_CHARS = 200


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
class IngredientAnswer:
    key: str
    status: Status
    canonical_name: str | None
    quantity: float | None
    unit: str | None
    confidence: float  # 0..1
    provider: str  # "local" | "openai" | "gemini" | "rules"
    reason: str | None  # why rejected / the error when failed
