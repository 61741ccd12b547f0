"""Simulated answers by schema name.

An answerer `fn(messages, schema)` gets the chat messages and the requested JSON schema and
returns the JSON value to answer with: the rules provider for ingredients
(model/sim/ingredient_answers.py), the deterministic menu parser for menus
(model/sim/menu_answers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from model.menu import MENU_SCHEMA_NAME
from model.schemas import INGREDIENT_SCHEMA_NAME
from model.sim.ingredient_answers import answer_ingredients
from model.sim.menu_answers import answer_menu

Answerer = Callable[[list[dict[str, Any]], dict[str, Any]], Any]

ANSWERERS: dict[str, Answerer] = {
    INGREDIENT_SCHEMA_NAME: answer_ingredients,
    MENU_SCHEMA_NAME: answer_menu,
}


class UnknownSchema(LookupError):
    pass


def registered() -> list[str]:
    return sorted(ANSWERERS)


def answer(schema_name: str | None, messages: list[dict[str, Any]], schema: dict[str, Any]) -> Any:
    if schema_name is None or schema_name not in ANSWERERS:
        raise UnknownSchema(f"no simulated answer for schema {schema_name!r}; known: {registered()}")
    return ANSWERERS[schema_name](messages, schema)
