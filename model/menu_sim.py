"""The simulator's "menu_extraction" answerer: the deterministic parser on the OCR lines.

Registered for MENU_SCHEMA_NAME by model.sim.answers.load_answerers.
"""

from __future__ import annotations

from typing import Any

from model.menu import lines_from_user_message
from model.menu_parser import parse_text


def answer_menu(messages: list[dict[str, Any]], schema: dict[str, Any]) -> Any:
    user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    return parse_text("\n".join(lines_from_user_message(str(user))))
