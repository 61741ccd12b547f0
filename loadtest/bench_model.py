"""The model path's accuracy against the rules on the same labelled rows (bench_rules --llm-url).

Three answers per row, scored by the same scorer:
- the rules alone;
- the model alone: the model's own answer (batched like the worker sends them, the strict
  schema check only, no grounding, no merge): its name, and "not food" where it said null.
  The model is not asked for quantity or unit, so it has no figures there;
- the merged chain: the resolver as the worker runs it (IngredientResolver: rules first, the
  model where needed, merge, retry, split, then the rules), with INGREDIENT_MODEL_SKIP_CONFIDENT
  on and, with --skip-confident both, off too (every line sent to the model).
Output tokens per line come from the server's `usage` of the valid answers.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import openai

from core.resolution import Resolution
from model.chain import JsonRequest, ProviderChain, ProviderConfig, request_kwargs
from model.endpoints import health_url_for
from model.ingredient_types import IngredientAnswer, IngredientQuery, normalize_name
from model.ingredients import (
    OUTPUT_TOKENS_OVERHEAD,
    OUTPUT_TOKENS_PER_ITEM,
    IngredientResolver,
    rules_unsure,
)
from model.prompts import INGREDIENT_SYSTEM, ingredient_user_message
from model.rules import resolve_with_rules, tidy_model_name
from model.schemas import INGREDIENT_SCHEMA_NAME, ingredient_schema, validate_ingredient_names

Row = dict[str, str]


@dataclass
class PathRun:
    title: str
    answers: list[IngredientAnswer | None]  # None: the path gave no answer for the row
    seconds: float
    requests: int = 0
    lines_asked: int = 0
    completion_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def provider_config(url: str, model: str, response_format: str, timeout_s: float) -> ProviderConfig:
    """The local provider as the worker builds it (non-thinking, schema)."""
    return ProviderConfig(
        name="local",
        model=model,
        base_url=url,
        api_key="not-needed",
        timeout_s=timeout_s,
        max_output_tokens=1000,
        response_format="json_object" if response_format == "json_object" else "json_schema",
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        health_url=health_url_for(url),
    )


def model_alone(cfg: ProviderConfig, rows: list[Row], batch: int) -> PathRun:
    client = openai.OpenAI(base_url=cfg.base_url, api_key=cfg.api_key, timeout=cfg.timeout_s, max_retries=0)
    schema = ingredient_schema()
    run = PathRun("the model alone (its own names; null = not food)", [], 0.0)
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        chunk = [r["input"] for r in rows[i : i + batch]]
        request = JsonRequest(
            INGREDIENT_SYSTEM,
            ingredient_user_message(chunk),
            INGREDIENT_SCHEMA_NAME,
            schema,
            max_tokens=OUTPUT_TOKENS_OVERHEAD + OUTPUT_TOKENS_PER_ITEM * len(chunk) * 2,
        )
        try:
            resp = client.chat.completions.create(**request_kwargs(cfg, request))
        except openai.OpenAIError as exc:  # a time-out on a shared server: no answer for these rows
            run.notes.append(f"no answer for {chunk}: {type(exc).__name__}")
            run.answers.extend([None] * len(chunk))
            continue
        run.requests += 1
        run.lines_asked += len(chunk)
        run.completion_tokens += resp.usage.completion_tokens if resp.usage else 0
        content = resp.choices[0].message.content or ""
        try:
            names = validate_ingredient_names(json.loads(content), len(chunk))
        except ValueError as exc:
            run.notes.append(f"invalid answer for {chunk}: {exc}")
            run.answers.extend([None] * len(chunk))
            continue
        for text, name in zip(chunk, names, strict=True):
            key = normalize_name(text)
            if name is None:
                run.answers.append(IngredientAnswer.rejected(key, "null", provider="local"))
            else:
                named = Resolution("resolved", tidy_model_name(name), None, None, 1.0, "local", None)
                run.answers.append(IngredientAnswer(key=key, **asdict(named)))
    client.close()
    run.seconds = time.perf_counter() - started
    return run


def merged_chain(cfg: ProviderConfig, rows: list[Row], batch: int, skip_confident: bool) -> PathRun:
    resolver = IngredientResolver(ProviderChain([cfg], cooldown_seconds=0), True, skip_confident)
    answers: list[IngredientAnswer | None] = []
    started = time.perf_counter()
    try:
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            answers.extend(resolver.resolve([IngredientQuery.of(r["input"]) for r in chunk]))
    finally:
        resolver.close()
    how = "on: only lines the rules are unsure of" if skip_confident else "off: every line"
    run = PathRun(f"the merged chain (skip when the rules are confident {how})", answers, 0.0)
    run.seconds = time.perf_counter() - started
    run.requests, run.lines_asked = resolver.usage.requests, resolver.usage.lines
    run.completion_tokens = resolver.usage.completion_tokens
    return run


def unsure(row: Row) -> bool:
    return rules_unsure(resolve_with_rules(row["input"]))


def compare(rows: list[Row], runs: list[PathRun], score: Any) -> None:
    """Prints name / quantity / unit / good food rejected per path, on all rows and on the rows
    the rules are unsure of. `score(rows, answers, counts)` fills the counters."""
    subsets = [("all rows", [True] * len(rows)), ("rows the rules are unsure of", [unsure(r) for r in rows])]
    for label, mask in subsets:
        picked = [r for r, m in zip(rows, mask, strict=True) if m]
        print(f"\n{label}: {len(picked)}")
        print(f"  {'path':<72} {'name':>7} {'quantity':>9} {'unit':>7} {'food rejected':>14}")
        for run in runs:
            answers = [a for a, m in zip(run.answers, mask, strict=True) if m]
            counts: Counter[str] = Counter()
            score(picked, answers, counts)
            n = max(1, counts["rows"])
            qty = counts["qty_ok"] / max(1, counts["qty_rows"])
            unit = counts["unit_ok"] / max(1, counts["unit_rows"])
            no_numbers = run.title.startswith("the model alone")
            print(
                f"  {run.title:<72} {counts['name_ok'] / n:>7.1%} "
                f"{'-' if no_numbers else f'{qty:.1%}':>9} {'-' if no_numbers else f'{unit:.1%}':>7} "
                f"{counts['rejected'] / n:>14.2%}"
            )
    print("\ncost on the server (valid answers, from `usage`):")
    for run in runs:
        if run.requests:
            print(
                f"  {run.title}: {run.requests} requests, {run.lines_asked} lines asked, "
                f"{run.completion_tokens / max(1, run.lines_asked):.1f} output tokens per line, "
                f"{run.seconds:.0f} s"
            )
        elif not run.title.startswith("the rules"):
            print(f"  {run.title}: no model request, {run.seconds:.0f} s")
    for run in runs:
        for note in run.notes[:5]:
            print(f"  note ({run.title[:20]}): {note[:200]}")
