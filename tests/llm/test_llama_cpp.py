"""The provider chain and a drain against a real llama.cpp server (SmolLM2-135M, json_object +
schema). The model is tiny and answers badly: what must hold is the wire contract, and that
validation catches its bad answers so every row still ends with a valid answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.settings import Settings
from model import metrics
from model.chain import JsonRequest, ProviderChain
from model.ingredients import IngredientQuery, IngredientResolver
from model.rules import resolve_with_rules

pytestmark = pytest.mark.timeout(600)

LINES = ["2 cups all-purpose flour", "3 large eggs, beaten", "paper towels", "1 tsp salt", "", "½ cup milk"]


def settings(url: str, model: str, **extra: Any) -> Settings:
    return Settings(
        local_llm_enabled=True,
        local_llm_base_url=url,
        local_llm_model=model,
        local_llm_response_format="json_object",
        local_llm_timeout_ms=120_000,
        llm_providers="local,rules",
        **extra,
    )


def test_chain_speaks_the_wire_contract_with_a_real_server(llm_url: str, llm_model: str) -> None:
    chain = ProviderChain.from_settings(settings(llm_url, llm_model))
    schema = {
        "type": "object",
        "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["color"],
    }
    request = JsonRequest(
        "Answer in JSON.", "What color is a ripe tomato?", "color_answer", schema, max_tokens=30
    )
    value, call = chain.complete_json(request, lambda d: d["color"])
    assert value in ("red", "green", "blue")  # the server's grammar kept it to the schema
    assert call.provider == "local" and call.model == llm_model
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and call.latency_ms > 0
    chain.close()


def test_resolver_answers_every_line_and_validation_catches_bad_answers(llm_url: str, llm_model: str) -> None:
    calls_before = _calls("local")
    resolver = IngredientResolver.from_settings(settings(llm_url, llm_model))
    answers = resolver.resolve([IngredientQuery.of(t) for t in LINES])
    resolver.close()
    assert len(answers) == len(LINES)
    assert all(a.status in ("resolved", "rejected") for a in answers)  # nothing failed: rules caught the rest
    assert answers[4].status == "rejected"  # the empty line never reaches the model
    for a in answers:
        assert 0 <= a.confidence <= 1 and a.provider in ("local", "rules")
        if a.status == "resolved":
            assert a.canonical_name and a.canonical_name == a.canonical_name.lower()
    for line, a in zip(LINES, answers, strict=True):
        rules = resolve_with_rules(line)
        assert a.status == rules.status  # a model's "not food" stands only where the rules agree
        assert (a.quantity, a.unit) == (rules.quantity, rules.unit)  # the numbers are the rules'
    assert _calls("local") > calls_before  # the model was asked
    print("answers:", [(a.provider, a.status, a.canonical_name) for a in answers])


def test_drain_against_the_real_server(llm_url: str, llm_model: str, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for line in LINES:
            conn.execute(
                "INSERT INTO ingredient_match_queue (source, raw_name, cleaned_name) VALUES ('recipe', %s, %s)",  # noqa: E501
                (line, line),
            )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOCAL_LLM_ENABLED": "true",
        "LOCAL_LLM_BASE_URL": llm_url,
        "LOCAL_LLM_MODEL": llm_model,
        "LOCAL_LLM_RESPONSE_FORMAT": "json_object",
        "LOCAL_LLM_TIMEOUT_MS": "120000",
        "LLM_PROVIDERS": "local,rules",
        "QUEUE_SOURCE": "any",
        "PROVIDER_COOLDOWN_SECONDS": "0",
    }
    sous = Path(sys.executable).with_name("sous")
    done = subprocess.run(
        [str(sous), "drain", "--max-cycles", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT status, provider, canonical_name, last_error FROM ingredient_match_queue"
        ).fetchall()
    assert len(rows) == len(LINES)
    assert {r[0] for r in rows} <= {"resolved", "rejected"}, (rows, done.stdout[-3000:])
    assert summary["resolved"] + summary["rejected"] == len(LINES)
    assert all(r[1] in ("local", "rules") for r in rows if r[0] == "resolved")
    print("drain:", summary, rows)


def _calls(provider: str) -> float:
    total = 0.0
    for metric in metrics.PROVIDER_CALLS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("provider") == provider:
                total += sample.value
    return total
