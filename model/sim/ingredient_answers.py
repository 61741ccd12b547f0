"""The simulator's ingredient answers: the rules provider, shaped by the ingredient schema
(a name per line, null where the rules find no food)."""

from __future__ import annotations

from typing import Any

from model.prompts import parse_ingredient_user_message
from model.rules import resolve_with_rules


def answer_ingredients(messages: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    content = user.get("content") if user else None
    if not isinstance(content, str):
        raise ValueError("no user message with the items")
    names = []
    for line in parse_ingredient_user_message(content):
        a = resolve_with_rules(line)
        names.append(a.canonical_name if a.status == "resolved" else None)
    return {"names": names}


def reject_every_item(value: dict[str, Any]) -> dict[str, Any]:
    """The "rejected" fault: a model that answers "not food" for every line."""
    return {"names": [None for _ in value.get("names", [])]}
