"""The simulator's ingredient answers: the rules provider, shaped by the ingredient schema."""

from __future__ import annotations

from typing import Any

from model.prompts import parse_ingredient_user_message
from model.rules import resolve_with_rules


def answer_ingredients(messages: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    content = user.get("content") if user else None
    if not isinstance(content, str):
        raise ValueError("no user message with the items")
    items = []
    for entry in parse_ingredient_user_message(content):
        a = resolve_with_rules(str(entry.get("text") or ""), entry.get("unit"))
        items.append(
            {
                "id": entry.get("id"),
                "status": "rejected" if a.status == "rejected" else "resolved",
                "name": a.canonical_name,
                "quantity": a.quantity,
                "unit": a.unit,
                "confidence": round(a.confidence, 2),
                "reason": a.reason,
            }
        )
    return {"items": items}
