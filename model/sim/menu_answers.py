"""The simulator's "menu_extraction" answerer: the deterministic parser on the OCR lines.

Answers MENU_SCHEMA_NAME in model/sim/answers.py.
"""

from __future__ import annotations

from typing import Any

from model.menu import lines_from_user_message
from model.menu_parser import parse_text


def answer_menu(messages: list[dict[str, Any]], schema: dict[str, Any]) -> Any:
    user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    return parse_text("\n".join(lines_from_user_message(str(user))))
