"""The scorer of ../shared/data/real-menus/README.md: labelled real menus, and how an extraction
compares with them.

- An extracted item counts when its name matches a truth name (accents, case, punctuation and a
  leading "the" ignored; rapidfuzz ratio >= 85) and its price equals that item's price; each
  truth item is matched once; F1 over items.
- `excluded` strings (add-ons such as "add salmon bacon +$6") are neither rewarded nor
  penalised: an extracted item that is in one of them, with a price written there, is left out.
- Names in the OCR text: a truth name counts when it appears in the normalised text (spaces
  ignored, partial ratio >= 85), whatever the layout made of it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

MATCH_RATIO = 85
REAL_MENUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-menus"


@dataclass(frozen=True)
class TruthMenu:
    name: str
    image: Path
    currency: str | None
    items: list[tuple[str, float]]
    excluded: list[str]


def load_truth(folder: Path = REAL_MENUS) -> list[TruthMenu]:
    menus = []
    for path in sorted(folder.glob("*.json")):
        images = [p for p in folder.glob(path.stem + ".*") if p.suffix.lower() != ".json"]
        if not images:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        items = [(i["name"], float(i["price"])) for c in data["categories"] for i in c["items"]]
        menus.append(TruthMenu(path.stem, images[0], data.get("currency"), items, data.get("excluded", [])))
    return menus


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).replace("ß", "ss").lower()
    folded = re.sub(r"[^\w\s]|_", " ", folded)
    folded = re.sub(r"\s+", " ", folded).strip()
    return folded[4:] if folded.startswith("the ") else folded


def names_match(a: str, b: str) -> bool:
    return fuzz.ratio(normalise(a), normalise(b)) >= MATCH_RATIO


def _prices_in(text: str) -> set[float]:
    return {float(m.replace(",", ".")) for m in re.findall(r"\d*[.,]?\d+", text) if m.strip(".,")}


def _excluded(name: str, price: float | None, excluded: list[str]) -> bool:
    key = normalise(name)
    return bool(key) and any(
        fuzz.partial_ratio(key, normalise(e)) >= MATCH_RATIO and (price is None or price in _prices_in(e))
        for e in excluded
    )


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Score) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def f1(self) -> float:
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1)


def extracted_items(result: dict[str, Any]) -> list[tuple[str, float | None]]:
    return [(i["name"], i["price"]) for c in result["menu"]["categories"] for i in c["items"]]


def score_items(got: list[tuple[str, float | None]], truth: TruthMenu) -> Score:
    left = list(truth.items)
    score = Score()
    for name, price in got:
        hit = next(
            (t for t in left if price is not None and abs(t[1] - price) < 0.005 and names_match(t[0], name)),
            None,
        )
        if hit is not None:
            left.remove(hit)
            score.tp += 1
        elif not _excluded(name, price, truth.excluded):
            score.fp += 1
    score.fn = len(left)
    return score


def names_in_text(text: str, truth: TruthMenu) -> int:
    """How many truth names appear in the OCR text at all."""
    flat = normalise(text).replace(" ", "")
    found = 0
    for name, _ in truth.items:
        key = normalise(name).replace(" ", "")
        if key and fuzz.partial_ratio(key, flat) >= MATCH_RATIO:
            found += 1
    return found
