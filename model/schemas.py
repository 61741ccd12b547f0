"""The output schema the models answer ingredient batches in, and its strict validation.

The model answers only what the merge with the rules needs (model/ingredients.py): the food's
canonical name, or null when the line is not food, one entry per line in the request's order.
The rules read quantity and unit. The shortest shape that still validates strictly: a list of
names, checked for exactly one entry per line, types and the characters of a food name (a
server may ignore the schema, and a small model fills it with nonsense).
"""

from __future__ import annotations

import re
from typing import Any

INGREDIENT_SCHEMA_NAME = "ingredient_names"
MAX_NAME_CHARS = 80
# How much of a line or a name the reason an answer is invalid quotes.
QUOTE_CHARS = 60

_NAME_CHARS = re.compile(r"^[\w' ,&()./%+-]+$")


class InvalidAnswer(ValueError):
    """A model answer that parsed but does not satisfy the contract."""


def ingredient_schema() -> dict[str, Any]:
    """The JSON schema of one batch answer (strict-mode compatible: every field required).
    The same object for every request, so a server compiles its grammar once."""
    return {
        "type": "object",
        "properties": {"names": {"type": "array", "items": {"type": ["string", "null"]}}},
        "required": ["names"],
        "additionalProperties": False,
    }


def validate_ingredient_names(data: Any, count: int) -> list[str | None]:
    """The names of an answer in line order (None: not food); InvalidAnswer unless the answer
    is {"names": [...]} with exactly `count` entries, each null or a food-like name."""
    if not isinstance(data, dict) or set(data) != {"names"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InvalidAnswer(f"answer must be an object with only a 'names' list, got {keys}")
    names = data["names"]
    if not isinstance(names, list):
        raise InvalidAnswer(f"'names' must be a list, got {type(names).__name__}")
    if len(names) != count:
        raise InvalidAnswer(f"expected one name for each of {count} lines; got {len(names)}")
    out: list[str | None] = []
    for i, entry in enumerate(names):
        if entry is None:
            out.append(None)
            continue
        if not isinstance(entry, str):
            raise InvalidAnswer(f"names[{i}]: a name must be a string or null, got {type(entry).__name__}")
        name = " ".join(entry.split())
        if not name:
            raise InvalidAnswer(f"names[{i}]: empty name (null is how to say 'not food')")
        if len(name) > MAX_NAME_CHARS:
            raise InvalidAnswer(f"names[{i}]: name longer than {MAX_NAME_CHARS} characters")
        if not _NAME_CHARS.match(name):
            raise InvalidAnswer(
                f"names[{i}]: name has characters a food name does not: {name[:QUOTE_CHARS]!r}"
            )
        out.append(name)
    return out
