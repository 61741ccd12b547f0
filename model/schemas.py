"""Output schemas the models answer in, and their strict validation.

The JSON schema goes to the server (vLLM guided decoding, OpenAI/Gemini structured output,
llama.cpp grammar); pydantic checks the answer again, because a server may ignore the schema
and a small model fills it with nonsense: every input answered exactly once, types and ranges.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

INGREDIENT_SCHEMA_NAME = "ingredient_matches"

_NAME_CHARS = re.compile(r"^[\w' ,&()./%+-]+$")


class InvalidAnswer(ValueError):
    """A model answer that parsed but does not satisfy the contract."""


class IngredientItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    id: int = Field(ge=0)
    status: Literal["resolved", "rejected"]
    name: str | None = Field(default=None, max_length=80)
    quantity: float | None = Field(default=None, ge=0, le=100_000)
    unit: str | None = Field(default=None, max_length=30)
    confidence: float = Field(ge=0, le=1)
    reason: str | None = Field(default=None, max_length=300)

    @field_validator("name", "unit", "reason")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> IngredientItem:
        if self.status == "resolved":
            if not self.name:
                raise ValueError("a resolved item needs a name")
            if not _NAME_CHARS.match(self.name):
                raise ValueError(f"name has characters a food name does not: {self.name[:40]!r}")
        return self


class IngredientBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[IngredientItem]


def ingredient_schema() -> dict[str, Any]:
    """The JSON schema of one batch answer (strict-mode compatible: every field required)."""
    item = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["resolved", "rejected"]},
            "name": {"type": ["string", "null"]},
            "quantity": {"type": ["number", "null"]},
            "unit": {"type": ["string", "null"]},
            "confidence": {"type": "number"},
            "reason": {"type": ["string", "null"]},
        },
        "required": ["id", "status", "name", "quantity", "unit", "confidence", "reason"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
        "additionalProperties": False,
    }


def validate_ingredient_batch(data: Any, count: int) -> list[IngredientItem]:
    """The items of an answer in id order; InvalidAnswer unless ids are exactly 0..count-1."""
    try:
        batch = IngredientBatch.model_validate(data)
    except ValidationError as exc:
        raise InvalidAnswer(f"answer does not match the schema: {_first_error(exc)}") from None
    ids = sorted(item.id for item in batch.items)
    if ids != list(range(count)):
        missing = sorted(set(range(count)) - set(ids))
        raise InvalidAnswer(
            f"expected one answer for each of {count} items; got {len(ids)} "
            f"(missing {missing[:5]}, duplicate or unknown ids {_extra(ids, count)[:5]})"
        )
    return sorted(batch.items, key=lambda item: item.id)


def _extra(ids: list[int], count: int) -> list[int]:
    seen: set[int] = set()
    extra = []
    for i in ids:
        if i in seen or i >= count:
            extra.append(i)
        seen.add(i)
    return extra


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']} ({exc.error_count()} error(s))"
