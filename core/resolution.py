"""One ingredient line's answer as the data layer writes and reads it.

The same value lands on the queue row (core/queue.py, complete_rows), in the canonical-name
cache (core/cache_store.py) and in the DRY_RUN shadow table (core/shadow_store.py). The
resolver's IngredientAnswer (model/ingredient_types.py) is a Resolution with the key it
answers, so the worker hands the resolver's answers to the data layer as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

Status = Literal["resolved", "rejected", "failed"]

# The fields stored under another column name (in the queue, the cache and the shadow table alike).
COLUMNS = {"unit": "resolved_unit", "quantity": "resolved_quantity"}


@dataclass(frozen=True)
class Resolution:
    status: Status
    canonical_name: str | None
    quantity: float | None
    unit: str | None
    confidence: float  # 0..1
    provider: str  # "local" | "openai" | "gemini" | "rules"; "none" when nothing answered
    reason: str | None  # why rejected / the error when failed

    def to_row(self) -> dict[str, Any]:
        """The answer under the names of the columns that store it."""
        return {COLUMNS.get(f.name, f.name): getattr(self, f.name) for f in fields(Resolution)}

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> Resolution:
        """The answer a stored row holds (its numeric columns read as floats)."""
        values = {f.name: row[COLUMNS.get(f.name, f.name)] for f in fields(Resolution)}
        quantity = values.pop("quantity")
        values["confidence"] = float(values["confidence"] or 0.0)
        return Resolution(quantity=None if quantity is None else float(quantity), **values)
