"""Accuracy of the rules provider, and of the model path, on the labelled ingredient sentences
in shared/data.

    python -m loadtest.bench_rules [--data DIR] [--limit N] [--show-misses N]
    python -m loadtest.bench_rules --llm-url http://127.0.0.1:PORT/v1 --model NAME \
        [--response-format json_object] [--batch 4] --limit 400

With --llm-url the rows go through the provider chain as a worker sends them (local provider,
chunks of --batch, retry, split, then the rules for what the model could not answer validly),
and two figures are printed: the model's own answers (rows it answered validly) and the chain
end to end. Against `sous sim` the model's answers are the rules' (SIMULATED); against a real
server (the llama.cpp lane) they are that model's.

Lenient name comparison, as the data's README asks: the answer matches when its head word
(last word, singular) is one of the label's words, or the label's head word is one of the
answer's (so "fresh tarragon" ~ "tarragon"; synonyms of the label count as well). Quantity:
the first number of the label (ranges: the first end), within 1%. Unit: the first label unit,
canonicalized like the answers. Rows whose label has no name are skipped.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from model.chain import ProviderChain, ProviderConfig
from model.endpoints import health_url_for
from model.ingredient_types import IngredientAnswer, IngredientQuery
from model.ingredients import IngredientResolver
from model.quantities import canonical_unit
from model.rules import fold_accents, resolve_with_rules
from model.vocabulary import SYNONYMS
from model.words import singular

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def words(phrase: str) -> set[str]:
    return {singular(w) for w in phrase.lower().replace(",", " ").split()}


def head(phrase: str) -> str:
    first = phrase.lower().split(" or ")[0].split(",")[0].split()
    return singular(first[-1]) if first else ""


def name_matches(answer: str, label: str) -> bool:
    label_l = label.lower()
    label_words = words(label_l) | words(SYNONYMS.get(singular(label_l), ""))
    label_words |= {SYNONYMS[w] for w in label_words if w in SYNONYMS}
    label_words = {fold_accents(w) for w in label_words}
    return head(answer) in label_words or head(label_l) in words(answer)


def label_quantity(text: str, units: list[str]) -> float | None:
    """The first labelled quantity; "1 #1$2" is 1.5 unless each number has its own unit."""
    tokens = text.split()
    if not tokens:
        return None
    first = tokens[0].split("-")[0]
    value = _label_number(first)
    if (
        value is not None
        and len(tokens) > max(1, len(units))
        and tokens[1].startswith("#")
        and "$" not in first
    ):
        extra = _label_number(tokens[1].split("-")[0])
        value = value + (extra or 0.0)
    return value


def _label_number(token: str) -> float | None:
    try:
        if token.startswith("#"):
            num, den = token[1:].split("$")
            return float(num) / float(den)
        return float(token)
    except (ValueError, ZeroDivisionError):
        return None


_SIZES = {
    "small",
    "medium",
    "large",
    "heaping",
    "level",
    "scant",
    "generous",
    "lg",
    "sm",
    "thin",
    "thick",
    "good",
    "medium-size",
    "big",
}


def label_unit(text: str) -> str | None:
    tokens = [t for t in text.split() if t not in _SIZES]
    if not tokens:
        return None
    return canonical_unit(" ".join(tokens[:2])) or canonical_unit(tokens[0]) or tokens[0].lower()


def load(data: Path, labelled: bool = True) -> list[dict[str, str]]:
    """The rows with a name label (or, labelled=False, the real lines that carry none)."""
    rows: list[dict[str, str]] = []
    for path in sorted(data.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows.extend(r for r in csv.DictReader(fh) if bool((r.get("name") or "").strip()) == labelled)
    return rows


Resolve = Callable[[list[str]], list[IngredientAnswer]]


def rules_resolve(texts: list[str]) -> list[IngredientAnswer]:
    return [resolve_with_rules(t) for t in texts]


def chain_resolver(url: str, model: str, response_format: str, timeout_s: float) -> IngredientResolver:
    """The local provider as the worker builds it (non-thinking, schema), no cool-down, rules last."""
    config = ProviderConfig(
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
    return IngredientResolver(ProviderChain([config], cooldown_seconds=0), use_rules=True)


def score(
    rows: list[dict[str, str]], answers: list[IngredientAnswer], counts: Counter[str], misses: list[str]
) -> None:
    for row, ans in zip(rows, answers, strict=True):
        counts["rows"] += 1
        if ans.status != "resolved" or not ans.canonical_name:
            counts["rejected"] += 1
            misses.append(f"REJECTED {row['input']!r}: {ans.reason}")
            continue
        if name_matches(ans.canonical_name, row["name"]):
            counts["name_ok"] += 1
        else:
            misses.append(f"NAME {row['input']!r}: got {ans.canonical_name!r}, label {row['name']!r}")
        want_q = label_quantity(row["quantity"], row["unit"].split())
        if want_q is not None:
            counts["qty_rows"] += 1
            if ans.quantity is not None and abs(ans.quantity - want_q) <= 0.01 * max(1.0, want_q):
                counts["qty_ok"] += 1
        want_u = label_unit(row["unit"])
        counts["unit_rows"] += 1
        if want_u == ans.unit:
            counts["unit_ok"] += 1


def report(title: str, counts: Counter[str]) -> None:
    n = max(1, counts["rows"])
    print(f"{title}: {counts['rows']} rows")
    print(f"  name (lenient head match): {counts['name_ok'] / n:.1%}")
    print(f"  quantity (rows with a labelled quantity, n={counts['qty_rows']}): "
          f"{counts['qty_ok'] / max(1, counts['qty_rows']):.1%}")  # fmt: skip
    print(f"  unit (incl. rows without a unit): {counts['unit_ok'] / max(1, counts['unit_rows']):.1%}")
    print(f"  rejected or failed: {counts['rejected'] / n:.2%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="a random sample of this many rows (0 = all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show-misses", type=int, default=0)
    parser.add_argument("--llm-url", help="an OpenAI-compatible server: measure the model path")
    parser.add_argument("--model", default="qwen3-8b-instruct")
    parser.add_argument("--response-format", choices=["json_schema", "json_object"], default="json_schema")
    parser.add_argument("--batch", type=int, default=4, help="rows per model request (the chunk size)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per model request")
    args = parser.parse_args(argv)
    rows = load(args.data)
    if not rows:
        print(f"no labelled rows under {args.data}", file=sys.stderr)
        return 2
    if args.limit:
        rows = random.Random(args.seed).sample(rows, min(args.limit, len(rows)))
    misses: list[str] = []
    started = time.perf_counter()
    if not args.llm_url:
        counts: Counter[str] = Counter()
        score(rows, rules_resolve([r["input"] for r in rows]), counts, misses)
        elapsed = time.perf_counter() - started
        report(f"rules provider on {args.data} ({elapsed:.1f} s, {len(rows) / elapsed:.0f} rows/s)", counts)
        # The data's unlabelled lines are real too: mostly ingredients, and the kitchen tools
        # recipes list (pans, skewers), which are right to be refused. The reasons show which.
        unlabelled = load(args.data, labelled=False)
        if args.limit:
            unlabelled = random.Random(args.seed).sample(unlabelled, min(args.limit, len(unlabelled)))
        refused = Counter(
            (a.reason or "").split(":")[0] for a in rules_resolve([r["input"] for r in unlabelled])
            if a.status != "resolved"
        )  # fmt: skip
        total = sum(refused.values())
        print(f"unlabelled real lines: {len(unlabelled)}, rejected {total / max(1, len(unlabelled)):.2%}")
        for reason, n in refused.most_common(5):
            print(f"  {n:5d}  {reason}")
    else:
        resolver = chain_resolver(args.llm_url, args.model, args.response_format, args.timeout)
        whole: Counter[str] = Counter()
        by_model: Counter[str] = Counter()
        model_rows: list[dict[str, str]] = []
        model_answers: list[IngredientAnswer] = []
        try:
            for i in range(0, len(rows), args.batch):
                batch = rows[i : i + args.batch]
                answers = resolver.resolve([IngredientQuery.of(r["input"]) for r in batch])
                score(batch, answers, whole, misses)
                for row, ans in zip(batch, answers, strict=True):
                    if ans.provider == "local":
                        model_rows.append(row)
                        model_answers.append(ans)
        finally:
            resolver.close()
        elapsed = time.perf_counter() - started
        score(model_rows, model_answers, by_model, [])
        print(f"model path: {args.model} at {args.llm_url}, chunks of {args.batch} ({elapsed:.1f} s)")
        print(f"  answered validly by the model: {len(model_rows)} of {len(rows)} "
              f"({len(model_rows) / len(rows):.1%}); the rules answered the rest")  # fmt: skip
        report("the model's own answers", by_model)
        report("the chain end to end (model, then rules)", whole)
    for line in random.Random(args.seed).sample(misses, min(args.show_misses, len(misses))):
        print("  miss:", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
