"""Simulated answers by schema name: `register(schema_name, fn)`.

`fn(messages, schema)` gets the chat messages and the requested JSON schema and returns the
JSON value to answer with. The ingredient answerer (rules provider) is built in; the menu
engineer's `model.menu_sim` registers "menu_extraction" when it exists.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Answerer = Callable[[list[dict[str, Any]], dict[str, Any]], Any]
OPTIONAL_ANSWERER_MODULES = ("model.menu_sim",)

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
    """Registers the built-in answerers and imports optional ones; called by the app factory."""
    from model.schemas import INGREDIENT_SCHEMA_NAME  # noqa: PLC0415
    from model.sim.ingredient_answers import answer_ingredients  # noqa: PLC0415

    register(INGREDIENT_SCHEMA_NAME, answer_ingredients)
    for module in OPTIONAL_ANSWERER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            log.info("sim_answerer_missing", extra={"answerer_module": module})
    return registered()
