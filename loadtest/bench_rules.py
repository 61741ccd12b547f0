"""Accuracy of the rules provider, and of the model path, on the labelled ingredient sentences
in shared/data.

    python -m loadtest.bench_rules [--data DIR] [--limit N] [--show-misses N]
    python -m loadtest.bench_rules --llm-url http://127.0.0.1:PORT/v1 --model NAME \
        [--response-format json_object] [--batch 4] --limit 400 [--skip-confident both]

Without --llm-url: the rules on every labelled row, per file and in all (tune the rules on one
file, report on the other: the per-file figures are the cross-file check). With --llm-url, on
the same sample: the rules alone, the model alone and the merged chain (loadtest/bench_model.py).

Fair, lenient name comparison, as the data's README asks: regional names count as equal (a
table of British/American pairs of its own, not the rules' vocabulary: "pork mince" ~ "ground
pork", "double cream" ~ "heavy cream"); then the answer matches when its head word (last word,
singular) is one of the label's words, or the label's head word is one of the answer's (so
"fresh tarragon" ~ "tarragon"). Quantity: the first number of the label (ranges: the first
end), within 1%. Unit: the first label unit, canonicalized like the answers. Rows whose label
has no name are skipped.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from model.ingredient_types import IngredientAnswer
from model.quantities import canonical_unit
from model.rules import fold_accents, resolve_with_rules
from model.vocabulary import SYNONYMS
from model.words import singular

from . import bench_model

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# British (and other regional) words -> the American word the canonical vocabulary uses. The
# scorer's own table, so a rules change cannot make the scorer more lenient.
REGIONAL = {
    "mince": "ground", "minced meat": "ground beef", "courgette": "zucchini", "aubergine": "eggplant",
    "prawn": "shrimp", "king prawn": "shrimp", "coriander leaves": "cilantro", "fresh coriander": "cilantro",
    "rocket": "arugula", "caster sugar": "granulated sugar", "superfine sugar": "granulated sugar",
    "icing sugar": "powdered sugar", "confectioners sugar": "powdered sugar", "double cream": "heavy cream",
    "single cream": "light cream", "spring onion": "green onion", "scallion": "green onion",
    "beetroot": "beet", "cornflour": "cornstarch", "plain flour": "all-purpose flour",
    "self-raising flour": "self-rising flour", "bicarbonate of soda": "baking soda", "chilli": "chili",
    "chillies": "chili", "capsicum": "bell pepper", "mangetout": "snow pea", "swede": "rutabaga",
    "treacle": "molasses", "demerara sugar": "brown sugar", "sultana": "raisin", "streaky bacon": "bacon",
    "gammon": "ham", "tinned": "canned", "stock cube": "bouillon cube", "groundnut oil": "peanut oil",
    "rapeseed oil": "canola oil", "garbanzo bean": "chickpea", "pak choi": "bok choy",
    "half and half": "half-and-half", "gelatine": "gelatin",
}  # fmt: skip


def regional(phrase: str) -> str:
    """The phrase with regional names in their American form (longest first)."""
    text = f" {fold_accents(phrase.lower())} "
    for word in sorted(REGIONAL, key=len, reverse=True):
        for form in (word, f"{word}s", f"{word}es"):
            text = text.replace(f" {form} ", f" {REGIONAL[word]} ")
    return " ".join(text.split())


def words(phrase: str) -> set[str]:
    return {singular(w) for w in phrase.lower().replace(",", " ").split()}


def head(phrase: str) -> str:
    first = phrase.lower().split(" or ")[0].split(",")[0].split()
    return singular(first[-1]) if first else ""


def name_matches(answer: str, label: str) -> bool:
    answer, label_l = regional(answer), regional(label)
    label_words = words(label_l) | words(SYNONYMS.get(singular(label_l), ""))
    label_words |= {SYNONYMS[w] for w in label_words if w in SYNONYMS}
    label_words = {fold_accents(w) for w in label_words}
    label_words |= joined(label_l)
    answer_heads = {head(answer)} | joined(answer)
    return bool(answer_heads & label_words) or head(label_l) in words(answer) | joined(answer)


def joined(phrase: str) -> set[str]:
    """Spellings that differ only in a space or hyphen: "bread crumbs" ~ "breadcrumbs",
    "chick-peas" ~ "chickpeas", "pine nut" ~ "pinenuts" (singular, lower case)."""
    parts = fold_accents(phrase.lower()).replace(",", " ").split()
    out = {singular(w.replace("-", "")) for w in parts if "-" in w}
    out |= {singular(a + b) for a, b in itertools.pairwise(parts)}
    return out


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
    """The rows with a name label (or, labelled=False, the real lines that carry none); each
    row's "file" is the file it came from."""
    rows: list[dict[str, str]] = []
    for path in sorted(data.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows.extend(
                {**r, "file": path.name}
                for r in csv.DictReader(fh)
                if bool((r.get("name") or "").strip()) == labelled
            )
    return rows


Resolve = Callable[[list[str]], list[IngredientAnswer]]


def rules_resolve(texts: list[str]) -> list[IngredientAnswer]:
    return [resolve_with_rules(t) for t in texts]


def score(
    rows: list[dict[str, str]],
    answers: Sequence[IngredientAnswer | None],
    counts: Counter[str],
    misses: list[str] | None = None,
) -> None:
    misses = [] if misses is None else misses
    for row, ans in zip(rows, answers, strict=True):
        counts["rows"] += 1
        if ans is None or ans.status != "resolved" or not ans.canonical_name:
            counts["rejected"] += 1
            misses.append(f"REJECTED {row['input']!r}: {ans.reason if ans else 'no valid answer'}")
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
    print(f"  name (lenient head match): {counts['name_ok'] / n:.2%}")
    print(f"  quantity (rows with a labelled quantity, n={counts['qty_rows']}): "
          f"{counts['qty_ok'] / max(1, counts['qty_rows']):.1%}")  # fmt: skip
    print(f"  unit (incl. rows without a unit): {counts['unit_ok'] / max(1, counts['unit_rows']):.1%}")
    print(f"  rejected or failed: {counts['rejected'] / n:.2%}")


def rules_report(args: argparse.Namespace, rows: list[dict[str, str]], misses: list[str]) -> None:
    started = time.perf_counter()
    answers = rules_resolve([r["input"] for r in rows])
    elapsed = time.perf_counter() - started
    for name in sorted({r["file"] for r in rows}):
        picked = [(r, a) for r, a in zip(rows, answers, strict=True) if r["file"] == name]
        counts: Counter[str] = Counter()
        score([r for r, _ in picked], [a for _, a in picked], counts)
        report(f"rules provider on {name}", counts)
    counts = Counter()
    score(rows, answers, counts, misses)
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
    parser.add_argument(
        "--skip-confident",
        choices=["both", "on", "off"],
        default="both",
        help="run the merged chain with INGREDIENT_MODEL_SKIP_CONFIDENT on, off, or both",
    )
    parser.add_argument(
        "--only-unsure", action="store_true", help="only the rows whose name the rules are unsure of"
    )
    parser.add_argument(
        "--no-model-alone", dest="model_alone", action="store_false", help="skip the model-alone pass"
    )
    args = parser.parse_args(argv)
    rows = load(args.data)
    if not rows:
        print(f"no labelled rows under {args.data}", file=sys.stderr)
        return 2
    if args.only_unsure:
        rows = [r for r in rows if bench_model.unsure(r)]
    if args.limit:
        rows = random.Random(args.seed).sample(rows, min(args.limit, len(rows)))
    misses: list[str] = []
    if not args.llm_url:
        rules_report(args, rows, misses)
    else:
        cfg = bench_model.provider_config(args.llm_url, args.model, args.response_format, args.timeout)
        print(f"model path: {args.model} at {args.llm_url}, {len(rows)} rows, chunks of {args.batch}")
        started = time.perf_counter()
        runs = [bench_model.PathRun("the rules alone", list(rules_resolve([r["input"] for r in rows])), 0.0)]
        runs[0].seconds = time.perf_counter() - started
        if args.skip_confident in ("both", "on"):
            runs.append(bench_model.merged_chain(cfg, rows, args.batch, skip_confident=True))
        if args.model_alone:
            runs.append(bench_model.model_alone(cfg, rows, args.batch))
        if args.skip_confident in ("both", "off"):
            runs.append(bench_model.merged_chain(cfg, rows, args.batch, skip_confident=False))
        bench_model.compare(rows, runs, score)
        score(rows, runs[1].answers, Counter(), misses)  # the first model path's misses
    for line in random.Random(args.seed).sample(misses, min(args.show_misses, len(misses))):
        print("  miss:", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
