"""Rows/s and output tokens per row on a real OpenAI-compatible server (the llama.cpp lane),
batched against one row per request, with the same request the provider chain sends.

    python -m loadtest.bench_llm --url http://127.0.0.1:PORT/v1 [--model smollm2] [--rows 24] [--batch 8]

Validity (did the answer pass the strict schema check) is reported beside the speed: with a
135M model most batched answers are invalid, and the chain would fall through to rules. The
characters of the answers per output token (server `usage`) calibrate the simulator's count
(model/sim/app.py COMPLETION_CHARS_PER_TOKEN).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import openai

from model.chain import JsonRequest, ProviderConfig, request_kwargs
from model.ingredients import OUTPUT_TOKENS_OVERHEAD, OUTPUT_TOKENS_PER_ITEM
from model.prompts import INGREDIENT_SYSTEM, ingredient_user_message
from model.schemas import INGREDIENT_SCHEMA_NAME, ingredient_schema, validate_ingredient_names

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FALLBACK = [
    "2 cups all-purpose flour",
    "3 large eggs",
    "1 tsp salt",
    "½ cup milk",
    "2 cloves garlic, minced",
    "1 tbsp olive oil",
    "1 onion, diced",
    "200 g butter",
]


@dataclass
class Result:
    rows: int = 0
    requests: int = 0
    valid_requests: int = 0
    completion_tokens: int = 0
    answer_chars: int = 0
    seconds: float = 0.0


def sample_lines(n: int, seed: int) -> list[str]:
    lines: list[str] = []
    for path in sorted(DATA.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            lines += [r["input"] for r in csv.DictReader(fh) if r.get("input")]
    if not lines:
        lines = FALLBACK * (n // len(FALLBACK) + 1)
    return random.Random(seed).sample(lines, n) if len(lines) >= n else lines[:n]


def run(client: openai.OpenAI, cfg: ProviderConfig, lines: list[str], batch: int) -> Result:
    out = Result()
    schema = ingredient_schema()
    started = time.perf_counter()
    for i in range(0, len(lines), batch):
        chunk = lines[i : i + batch]
        request = JsonRequest(
            INGREDIENT_SYSTEM,
            ingredient_user_message(chunk),
            INGREDIENT_SCHEMA_NAME,
            schema,
            max_tokens=OUTPUT_TOKENS_OVERHEAD + OUTPUT_TOKENS_PER_ITEM * len(chunk) * 2,
        )
        resp = client.chat.completions.create(**request_kwargs(cfg, request))
        out.requests += 1
        out.rows += len(chunk)
        out.completion_tokens += resp.usage.completion_tokens if resp.usage else 0
        content = resp.choices[0].message.content or ""
        out.answer_chars += len(content.strip())
        try:
            validate_ingredient_names(json.loads(content), len(chunk))
            out.valid_requests += 1
        except ValueError:  # json.JSONDecodeError and InvalidAnswer are ValueErrors
            pass
    out.seconds = time.perf_counter() - started
    return out


def report(label: str, r: Result) -> str:
    return (
        f"  {label}: {r.rows / r.seconds:.2f} rows/s, {r.completion_tokens / r.rows:.1f} output tokens/row, "
        f"{r.requests} requests in {r.seconds:.1f} s, valid answers {r.valid_requests}/{r.requests}, "
        f"{r.answer_chars / max(1, r.completion_tokens):.2f} answer characters per output token"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="the server's /v1 base URL")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--response-format", choices=("json_object", "json_schema"), default="json_object")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    cfg = ProviderConfig(
        name="local",
        model=args.model,
        base_url=args.url,
        api_key="not-needed",
        timeout_s=300,
        max_output_tokens=4096,
        response_format=args.response_format,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    client = openai.OpenAI(base_url=args.url, api_key="not-needed", timeout=300, max_retries=0)
    lines = sample_lines(args.rows, args.seed)
    run(client, cfg, lines[:1], 1)  # warm-up: load the model, fill caches
    batched = run(client, cfg, lines, args.batch)
    single = run(client, cfg, lines, 1)
    print(
        f"llama.cpp lane (real server), model {args.model}, {len(lines)} rows, {args.response_format}+schema:"
    )
    print(report(f"batched ({args.batch} rows/request)", batched))
    print(report("one row per request", single))
    ratio = (batched.rows / batched.seconds) / (single.rows / single.seconds)
    print(f"  batched/single rows/s: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
