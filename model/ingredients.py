"""The ingredient resolver: queries in, exactly one answer per query out, in order.

Junk is rejected by the rules before any model sees it. The rest goes to the LLM providers in
LLM_PROVIDERS order: a chunk is retried once (in the chain), an invalid answer splits the
chunk in halves, a transport failure moves the chunk to the next provider. The rules provider
answers what is left when it is in LLM_PROVIDERS; otherwise such items come back `failed`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from core.errors import ProviderError
from model import metrics
from model.chain import JsonRequest, Provider, ProviderChain
from model.grounding import ungrounded_reason
from model.ingredient_types import IngredientAnswer, IngredientQuery, normalize_name
from model.prompts import INGREDIENT_SYSTEM, PROMPT_VERSION, ingredient_user_message
from model.quantities import canonical_unit
from model.rules import RULES_VERSION, junk_reason, resolve_with_rules, tidy_model_name
from model.schemas import (
    INGREDIENT_SCHEMA_NAME,
    IngredientItem,
    InvalidAnswer,
    ingredient_schema,
    validate_ingredient_batch,
)

__all__ = [
    "PROMPT_VERSION",
    "IngredientAnswer",
    "IngredientQuery",
    "IngredientResolver",
    "normalize_name",
]

log = logging.getLogger(__name__)

OUTPUT_TOKENS_PER_ITEM = 48  # one answer object, an upper estimate: the simulator averages ~31 (chars/4)
OUTPUT_TOKENS_OVERHEAD = 16
PROMPT_TOKENS_PER_ITEM = 12  # the {"id", "text"} wrapper around the text
_UNIT_WORD = re.compile(r"^[a-z][a-z .]{0,19}$")


class IngredientResolver:
    def __init__(self, chain: ProviderChain | None, use_rules: bool = True) -> None:
        self.chain = chain or ProviderChain([])
        self.use_rules = use_rules
        self._schema = ingredient_schema()

    @classmethod
    def from_settings(cls, settings: Any) -> IngredientResolver:
        return cls(ProviderChain.from_settings(settings), use_rules="rules" in settings.provider_order)

    @property
    def model_id(self) -> str:
        return self.chain.model_id or f"rules:{RULES_VERSION}"

    def estimate_tokens(self, q: IngredientQuery) -> int:
        """Prompt plus answer tokens this query adds to a batched request (for chunking)."""
        chars = min(len(q.text), 300) + len(q.raw_unit or "")
        return chars // 4 + PROMPT_TOKENS_PER_ITEM + OUTPUT_TOKENS_PER_ITEM

    def resolve(self, queries: Sequence[IngredientQuery]) -> list[IngredientAnswer]:
        answers: dict[int, IngredientAnswer] = {}
        pending: list[int] = []
        for i, q in enumerate(queries):
            if junk_reason(q.text) is not None:
                answers[i] = _with_key(resolve_with_rules(q.text, q.raw_unit), q.key)
            else:
                pending.append(i)
        last_error = "no LLM provider enabled"
        for provider in self.chain.providers:
            if not pending:
                break
            if not self.chain.is_available(provider):
                last_error = f"{provider.name}: skipped (cool-down or unhealthy)"
                continue
            pending, error = self._resolve_with(provider, queries, pending, answers)
            last_error = error or last_error
        for i in pending:
            q = queries[i]
            if self.use_rules:
                answers[i] = _with_key(resolve_with_rules(q.text, q.raw_unit), q.key)
            else:
                answers[i] = IngredientAnswer(
                    q.key, "failed", None, None, None, 0.0, "none", last_error[:500]
                )
        out = [answers[i] for i in range(len(queries))]
        for a in out:
            metrics.INGREDIENT_ANSWERS.labels(a.provider, a.status).inc()
        return out

    def _resolve_with(
        self,
        provider: Provider,
        queries: Sequence[IngredientQuery],
        indices: list[int],
        answers: dict[int, IngredientAnswer],
    ) -> tuple[list[int], str | None]:
        """Answers what this provider can; returns the indices left over and the last error."""
        per_call = max(
            1, (provider.config.max_output_tokens - OUTPUT_TOKENS_OVERHEAD) // OUTPUT_TOKENS_PER_ITEM
        )
        stack = [indices[i : i + per_call] for i in range(0, len(indices), per_call)][::-1]
        left: list[int] = []
        error: str | None = None
        while stack:
            chunk = stack.pop()
            if not self.chain.is_available(provider):
                left.extend(chunk)
                continue
            try:
                items = self._ask(provider, [queries[i] for i in chunk])
            except ProviderError as exc:
                error = str(exc)
                if exc.kind == "invalid" and len(chunk) > 1:
                    half = len(chunk) // 2
                    stack.extend([chunk[half:], chunk[:half]])
                    log.info("chunk_split", extra={"provider": provider.name, "size": len(chunk)})
                else:
                    left.extend(chunk)
                continue
            for i, item in zip(chunk, items, strict=True):
                answers[i] = _from_item(queries[i], item, provider.name)
        return sorted(left), error

    def _ask(self, provider: Provider, chunk: list[IngredientQuery]) -> list[IngredientItem]:
        request = JsonRequest(
            system=INGREDIENT_SYSTEM,
            user=ingredient_user_message([(q.text, q.raw_unit) for q in chunk]),
            schema_name=INGREDIENT_SCHEMA_NAME,
            schema=self._schema,
            max_tokens=OUTPUT_TOKENS_OVERHEAD + OUTPUT_TOKENS_PER_ITEM * len(chunk) * 2,
        )
        items, _call = self.chain.call(provider, request, lambda data: _validate(data, chunk))
        return items

    def close(self) -> None:
        self.chain.close()


def _validate(data: object, chunk: list[IngredientQuery]) -> list[IngredientItem]:
    """Schema, one answer per query, and every resolved answer grounded in its line."""
    items = validate_ingredient_batch(data, len(chunk))
    for i, (q, item) in enumerate(zip(chunk, items, strict=True)):
        reason = ungrounded_reason(q.text, q.raw_unit, item)
        if reason is not None:
            raise InvalidAnswer(f"item {i}: {reason}")
    return items


def _from_item(q: IngredientQuery, item: IngredientItem, provider: str) -> IngredientAnswer:
    if item.status == "rejected":
        reason = item.reason or "rejected by the model"
        return IngredientAnswer(q.key, "rejected", None, None, None, item.confidence, provider, reason)
    unit = canonical_unit(item.unit) if item.unit else None
    if unit is None and item.unit and _UNIT_WORD.match(item.unit.lower()):
        unit = item.unit.lower()
    if unit is None and q.raw_unit:
        unit = canonical_unit(q.raw_unit)
    name = tidy_model_name(item.name or "")
    return IngredientAnswer(q.key, "resolved", name, item.quantity, unit, item.confidence, provider, None)


def _with_key(answer: IngredientAnswer, key: str) -> IngredientAnswer:
    if answer.key == key:
        return answer
    return IngredientAnswer(
        key, answer.status, answer.canonical_name, answer.quantity, answer.unit, answer.confidence,
        answer.provider, answer.reason,
    )  # fmt: skip
