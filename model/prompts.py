"""Prompts. PROMPT_VERSION is part of the canonical-cache key: change it whenever a prompt
or schema change could change answers, and old cache entries stop being served."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

PROMPT_VERSION = "ingredients-v1"

INGREDIENT_SYSTEM = """You standardize ingredient lines for a recipe app.
For each item return one object with the same "id":
- "status": "resolved" for a food ingredient, "rejected" for anything that is not food
  (household goods, code, markup, gibberish, empty text).
- "name": the canonical ingredient, lower case, singular, generic (no brand, no preparation
  words, no sizes): "2 large eggs, beaten" -> "egg"; "extra-virgin olive oil" -> "olive oil".
- "quantity": the number as a decimal (1/2 -> 0.5; a range -> its first number), else null.
- "unit": the unit in singular full words ("tablespoon", "cup", "gram", "clove"), else null.
- "confidence": 0 to 1.
- "reason": why it was rejected, else null.
Answer with JSON only: {"items": [...]}, exactly one object per input id."""

_ITEMS_MARK = "Items:"


def ingredient_user_message(items: Sequence[tuple[str, str | None]]) -> str:
    """The user turn: the items as a JSON array of {id, text, unit}."""
    payload = [
        {"id": i, "text": text[:300], **({"unit": unit} if unit else {})}
        for i, (text, unit) in enumerate(items)
    ]
    return f"{_ITEMS_MARK}\n{json.dumps(payload, ensure_ascii=False)}"


def parse_ingredient_user_message(message: str) -> list[dict[str, Any]]:
    """The items back out of a user turn (the simulator reads requests with this)."""
    at = message.find(_ITEMS_MARK)
    body = message[at + len(_ITEMS_MARK) :] if at >= 0 else message
    match = re.search(r"\[.*\]", body, re.DOTALL)
    if match is None:
        raise ValueError("no item list in the message")
    items = json.loads(match.group(0))
    if not isinstance(items, list):
        raise ValueError("the item list is not a JSON array")
    return [i for i in items if isinstance(i, dict)]
