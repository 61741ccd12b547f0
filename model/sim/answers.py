"""Simulated answers by schema name: `register(schema_name, fn)`.

`fn(messages, schema)` gets the chat messages and the requested JSON schema and returns the
JSON value to answer with: the rules provider for ingredients, the deterministic menu parser
(model.menu_sim) for menus, both registered by load_answerers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Answerer = Callable[[list[dict[str, Any]], dict[str, Any]], Any]

_registry: dict[str, Answerer] = {}


class UnknownSchema(LookupError):
    pass


def register(schema_name: str, fn: Answerer) -> None:
    _registry[schema_name] = fn


def registered() -> list[str]:
    return sorted(_registry)


def answer(schema_name: str | None, messages: list[dict[str, Any]], schema: dict[str, Any]) -> Any:
    if schema_name is None or schema_name not in _registry:
        raise UnknownSchema(f"no simulated answer for schema {schema_name!r}; known: {registered()}")
    return _registry[schema_name](messages, schema)


def load_answerers() -> list[str]:
    """Registers the answerers; called by the app factory."""
    from model.menu import MENU_SCHEMA_NAME  # noqa: PLC0415
    from model.menu_sim import answer_menu  # noqa: PLC0415
    from model.schemas import INGREDIENT_SCHEMA_NAME  # noqa: PLC0415
    from model.sim.ingredient_answers import answer_ingredients  # noqa: PLC0415

    register(INGREDIENT_SCHEMA_NAME, answer_ingredients)
    register(MENU_SCHEMA_NAME, answer_menu)
    return registered()
