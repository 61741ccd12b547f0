"""The simulator's "menu_extraction" answerer: the deterministic parser on the OCR lines.

Imported by model.sim.answers.load_answerers (lazily, if it exists); registering is the point
of importing it, so the side effect is this module's whole job.
"""

from __future__ import annotations

from typing import Any

from model.menu import MENU_SCHEMA_NAME, lines_from_user_message
from model.menu_parser import parse_text
from model.sim import answers


def answer_menu(messages: list[dict[str, Any]], schema: dict[str, Any]) -> Any:
    user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    return parse_text("\n".join(lines_from_user_message(str(user))))


answers.register(MENU_SCHEMA_NAME, answer_menu)
