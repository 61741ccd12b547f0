"""The ingredient resolver: queries in, exactly one answer per query out, in order.

Each part does what it is good at. The rules read every line first: junk is rejected before
any model sees it, and quantity and unit are always the rules' (deterministic, ~99 % on the
labelled data). The model answers what the rules are unsure of: the food's canonical name,
and food or not. With `skip_confident` (INGREDIENT_MODEL_SKIP_CONFIDENT), a line whose name the
rules are sure of (`rules_unsure` is false) is not sent at all.

A model's answer is merged per item (`merge`): its name replaces the rules' only where the
rules were unsure (no name, or a near spelling); its "not food" (null) counts only where the
rules also found the line junk or non-food. A null for a line the rules read as food, or a
name not grounded in its line, makes the whole answer invalid, and it goes the usual way:
retried once (in the chain), a chunk split in halves, a transport failure moves the chunk to
the next provider, and the rules answer what is left when "rules" is in LLM_PROVIDERS
(otherwise such items come back `failed`). So a rejection from a model is only ever one the
rules agree with, and only such rejections reach the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.errors import ProviderError
from core.settings import Settings
from model import metrics
from model.chain import JsonRequest, Provider, ProviderChain
from model.grounding import ungrounded_name_reason
from model.ingredient_types import IngredientAnswer, IngredientQuery, normalize_name
from model.prompts import INGREDIENT_SYSTEM, PROMPT_VERSION, ingredient_user_message
from model.quantities import parse_amount
from model.rules import (
    MAX_INPUT_CHARS,
    NEAR_SPELLING_CONFIDENCE,
    NON_FOOD_REASON,
    RULES_VERSION,
    junk_reason,
    resolve_with_rules,
    tidy_model_name,
)
from model.schemas import (
    INGREDIENT_SCHEMA_NAME,
    QUOTE_CHARS,
    InvalidAnswer,
    ingredient_schema,
    validate_ingredient_names,
)

__all__ = [
    "PROMPT_VERSION",
    "IngredientAnswer",
    "IngredientQuery",
    "IngredientResolver",
    "normalize_name",
]

log = logging.getLogger(__name__)

# Output tokens per answered line, an upper estimate for sizing chunks and max_tokens: a name
# costs 3-6 tokens with its quotes and comma (measured on the llama.cpp lane, BENCHMARKS.md).
OUTPUT_TOKENS_PER_ITEM = 12
OUTPUT_TOKENS_OVERHEAD = 8
PROMPT_TOKENS_PER_ITEM = 4  # the quotes and comma around a line in the JSON array
# Where the rules are unsure of the name: a near-spelling match (NEAR_SPELLING_CONFIDENCE: the
# rules put a vocabulary word the line does not spell; ~61 % right on the labelled data) or no
# name at all. There the model's name is taken, at this confidence. Everywhere else on the rules'
# ladder (model/rules.py) their name stands, down to a phrase the vocabulary does not know: that
# is the line's own words, ~99 % right, and a model replacing it measured worse (BENCHMARKS.md).
MODEL_NAME_CONFIDENCE = 0.85
# A name only the model found (the rules rejected the line for want of one, not as non-food).
MODEL_ONLY_NAME_CONFIDENCE = 0.6


@dataclass
class ModelUsage:
    """What the valid model answers of this resolver cost, from the servers' `usage`."""

    requests: int = 0
    lines: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class IngredientResolver:
    def __init__(
        self, chain: ProviderChain | None, use_rules: bool = True, skip_confident: bool = False
    ) -> None:
        self.chain = chain or ProviderChain([])
        self.use_rules = use_rules
        self.skip_confident = skip_confident
        self._schema = ingredient_schema()
        self.usage = ModelUsage()

    @classmethod
    def from_settings(cls, settings: Settings) -> IngredientResolver:
        return cls(
            ProviderChain.from_settings(settings),
            use_rules="rules" in settings.provider_order,
            skip_confident=settings.ingredient_model_skip_confident,
        )

    @property
    def model_id(self) -> str:
        return self.chain.model_id or f"rules:{RULES_VERSION}"

    def estimate_tokens(self, q: IngredientQuery) -> int:
        """Prompt plus answer tokens this query adds to a batched request (for chunking)."""
        chars = min(len(q.text), MAX_INPUT_CHARS)  # a longer line is junk: no model sees it
        return chars // 4 + PROMPT_TOKENS_PER_ITEM + OUTPUT_TOKENS_PER_ITEM

    def needs_model(self, rules: IngredientAnswer, text: str) -> bool:
        """Junk never goes to a model; with skip_confident (and the rules a provider), neither
        does a line whose name the rules know."""
        if junk_reason(text) is not None:
            return False
        return not (self.skip_confident and self.use_rules and not rules_unsure(rules))

    def resolve(self, queries: Sequence[IngredientQuery]) -> list[IngredientAnswer]:
        rules = [replace(resolve_with_rules(q.text, q.raw_unit), key=q.key) for q in queries]
        answers: dict[int, IngredientAnswer] = {}
        pending: list[int] = []
        for i, q in enumerate(queries):
            if self.needs_model(rules[i], q.text):
                pending.append(i)
            else:
                answers[i] = rules[i]
        last_error = "no LLM provider enabled"
        for provider in self.chain.providers:
            if not pending:
                break
            if not self.chain.is_available(provider):
                last_error = f"{provider.name}: skipped (cool-down or unhealthy)"
                continue
            pending, error = self._resolve_with(provider, queries, rules, pending, answers)
            last_error = error or last_error
        for i in pending:
            answers[i] = rules[i] if self.use_rules else IngredientAnswer.failed(queries[i].key, last_error)
        out = [answers[i] for i in range(len(queries))]
        for a in out:
            metrics.INGREDIENT_ANSWERS.labels(a.provider, a.status).inc()
        return out

    def _resolve_with(
        self,
        provider: Provider,
        queries: Sequence[IngredientQuery],
        rules: list[IngredientAnswer],
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
                names = self._ask(provider, [queries[i] for i in chunk], [rules[i] for i in chunk])
            except ProviderError as exc:
                error = str(exc)
                if exc.kind == "invalid" and len(chunk) > 1:
                    half = len(chunk) // 2
                    stack.extend([chunk[half:], chunk[:half]])
                    log.info("chunk_split", extra={"provider": provider.name, "size": len(chunk)})
                else:
                    left.extend(chunk)
                continue
            for i, name in zip(chunk, names, strict=True):
                answers[i] = merge(queries[i], rules[i], name, provider.name)
        return sorted(left), error

    def _ask(
        self, provider: Provider, chunk: list[IngredientQuery], rules: list[IngredientAnswer]
    ) -> list[str | None]:
        request = JsonRequest(
            system=INGREDIENT_SYSTEM,
            user=ingredient_user_message([q.text for q in chunk]),
            schema_name=INGREDIENT_SCHEMA_NAME,
            schema=self._schema,
            max_tokens=OUTPUT_TOKENS_OVERHEAD + OUTPUT_TOKENS_PER_ITEM * len(chunk) * 2,
        )
        names, call = self.chain.call(provider, request, lambda data: validate_names(data, chunk, rules))
        self.usage.requests += 1
        self.usage.lines += len(chunk)
        self.usage.prompt_tokens += call.prompt_tokens
        self.usage.completion_tokens += call.completion_tokens
        return names

    def close(self) -> None:
        self.chain.close()


def validate_names(
    data: object, chunk: Sequence[IngredientQuery], rules: Sequence[IngredientAnswer]
) -> list[str | None]:
    """Schema, one name per query, every name grounded in its line, and "not food" (null) only
    where the rules also found no food: otherwise InvalidAnswer."""
    names = validate_ingredient_names(data, len(chunk))
    for i, (q, rule, name) in enumerate(zip(chunk, rules, names, strict=True)):
        if name is None and rule.status == "resolved":
            raise InvalidAnswer(
                f"item {i}: answered not food, but the rules read food in {q.text[:QUOTE_CHARS]!r}"
            )
        if name is not None:
            reason = ungrounded_name_reason(q.text, name, rule)
            if reason is not None:
                raise InvalidAnswer(f"item {i}: {reason}")
    return names


def merge(q: IngredientQuery, rules: IngredientAnswer, name: str | None, provider: str) -> IngredientAnswer:
    """One line's answer from the rules' reading and a validated model name (None: not food)."""
    if name is None:  # validated: the rules found no food either
        return IngredientAnswer.rejected(q.key, rules.reason, provider)
    if rules.status == "rejected":
        if (rules.reason or "").startswith(NON_FOOD_REASON):
            return rules  # a named non-food thing ("paper towels") stays refused, whoever says food
        amount = parse_amount(q.text)  # the rules found no name; the model did
        return IngredientAnswer(
            key=q.key,
            status="resolved",
            canonical_name=tidy_model_name(name),
            quantity=amount.quantity,
            unit=amount.unit,
            confidence=MODEL_ONLY_NAME_CONFIDENCE,
            provider=provider,
            reason=None,
        )
    if rules_unsure(rules):
        return replace(
            rules, canonical_name=tidy_model_name(name), confidence=MODEL_NAME_CONFIDENCE, provider=provider
        )
    return replace(rules, provider=provider)


def rules_unsure(rules: IngredientAnswer) -> bool:
    """The rules found no name, or only a near spelling of one: the model's name is wanted."""
    return rules.status == "rejected" or rules.confidence == NEAR_SPELLING_CONFIDENCE
