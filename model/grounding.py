"""Is a model's answer about the line it was given?

A schema-valid answer can still be made up: measured on the labelled data (BENCHMARKS.md), a
small model answered "1 bunch fresh thyme" with "1 large egg", copied from the prompt's example,
and gave quantities that appear nowhere in the line. Such an answer would be written as
`resolved`. So a resolved item must be grounded in its line, else the answer is invalid and
the chain treats it like any invalid answer (retry, split, next provider, the rules):

- name: one of its food words (not a unit, number, size or preparation word) is a word of the
  line, a part of one ("bread" in "breadcrumbs") or a near spelling; or the name is what the
  rules make of the line (their vocabulary maps synonyms: "scallions" -> "green onion").
- quantity: a number written in the line (digits, fractions, ½, "1 1/2", number words), or
  the rules' reading of it; with no number in the line, only 1 ("an onion").
- unit: a kitchen unit only when the line (or the row's raw unit) names that unit.

Deliberately lenient on names: a model may canonicalize ("extra-virgin olive oil" -> "olive
oil"); what it may not do is answer about something else. A translation the rules do not know
("Kartoffeln" -> "potato") is refused too and the rules answer instead: a plainer answer
beats a wrong one.
"""

from __future__ import annotations

import itertools
import re

from rapidfuzz import fuzz

from model.quantities import canonical_unit, number
from model.rules import fold_accents, resolve_with_rules, tidy_model_name
from model.schemas import IngredientItem
from model.vocabulary import COUNT_UNITS, NUMBER_WORDS, PREPARATION_WORDS
from model.words import singular

_WORD = re.compile(r"[a-z]+")
_NUMBER = re.compile(r"\d+/\d+|\d+(?:[.,]\d+)?|[\u00bc-\u00be\u2150-\u215e]")
_SIZES = frozenset(
    {"small", "medium", "large", "big", "extra", "jumbo", "whole", "fresh", "heaping", "scant", "generous"}
)
MIN_WORD = 3
NEAR_SPELLING = 80  # rapidfuzz ratio: "tomatoe" ~ "tomato", "parmesan" ~ "parmigiano" is not


def _food_words(text: str) -> set[str]:
    words = _WORD.findall(fold_accents(text.lower()))
    return {
        singular(w)
        for w in words
        if len(w) >= MIN_WORD
        and w not in PREPARATION_WORDS
        and w not in _SIZES
        and w not in NUMBER_WORDS
        and not _measure(w)
    }


def _measure(word: str) -> bool:
    """A unit of mass, volume or length; count units ("clove", "head") can be foods too."""
    unit = canonical_unit(word)
    return unit is not None and unit not in COUNT_UNITS


def _close(a: str, b: str) -> bool:
    return a in b or b in a or fuzz.ratio(a, b) >= NEAR_SPELLING


def _numbers(text: str) -> set[float]:
    values = [v for v in (number(m.group()) for m in _NUMBER.finditer(text)) if v is not None]
    found = set(values) | {a + b for a, b in itertools.pairwise(values) if b < 1}  # 1 ½
    found |= {NUMBER_WORDS[w] for w in _WORD.findall(text.lower()) if w in NUMBER_WORDS}
    return found


def _units(text: str, raw_unit: str | None) -> set[str]:
    words = re.findall(r"[a-zA-Z]+", text)  # "250g" gives "g": digits split the words
    found = {canonical_unit(w) for w in words} | {
        canonical_unit(f"{a} {b}") for a, b in itertools.pairwise(words)
    }
    found.add(canonical_unit(raw_unit))
    return {u for u in found if u}


def ungrounded_reason(text: str, raw_unit: str | None, item: IngredientItem) -> str | None:
    """Why a resolved item is not about its line, or None when it is (rejections pass)."""
    if item.status != "resolved" or not item.name:
        return None
    rules = resolve_with_rules(text, raw_unit)
    name_words = _food_words(item.name) | _food_words(tidy_model_name(item.name))  # synonyms mapped
    if not name_words:
        return f"name {item.name!r} has no food word"
    line_words = _food_words(text)
    rules_words = _food_words(rules.canonical_name or "")
    if not any(_close(w, v) for w in name_words for v in line_words | rules_words):
        return f"name {item.name!r} is not about {text[:60]!r}"
    if item.quantity is not None:
        written = _numbers(text) | ({rules.quantity} if rules.quantity is not None else set())
        allowed = written or {1.0}
        if not any(abs(item.quantity - q) <= 0.01 * max(1.0, q) for q in allowed):
            return f"quantity {item.quantity:g} is not written in {text[:60]!r}"
    unit = canonical_unit(item.unit) if item.unit else None
    if unit is not None and unit != rules.unit and unit not in _units(text, raw_unit):
        return f"unit {unit!r} is not named in {text[:60]!r}"
    return None


# --- menus -------------------------------------------------------------------------------------
# The same rule for a menu answer: every item must be in the OCR text. A model may mend OCR
# ("Margherlta" -> "Margherita": a near spelling) and read a price whose point OCR lost
# ("1275" -> 12.75), but an item or a price that is not in the text at all is made up.
_MENU_WORD = re.compile(r"[^\W\d_]{3,}")
_MENU_NUMBER = re.compile(r"\d+(?:[.,:]\d{1,2})?")


def _menu_words(text: str) -> set[str]:
    return {w for w in _MENU_WORD.findall(fold_accents(text.lower()))}


def _menu_prices(text: str) -> set[float]:
    found: set[float] = set()
    for token in _MENU_NUMBER.findall(text):
        whole = token.replace(",", ".").replace(":", ".")
        found.add(float(whole))
        digits = re.sub(r"\D", "", token)
        if len(digits) >= 3:
            found.add(int(digits) / 100)  # "1275": 12.75 with the point lost
    return found


def ungrounded_menu_reason(result: dict[str, object], ocr_text: str) -> str | None:
    """Why a structured menu is not the OCR text's, or None when every item is in it."""
    text_words = _menu_words(ocr_text)
    prices = _menu_prices(ocr_text)
    menu = result.get("menu")
    categories = menu.get("categories", []) if isinstance(menu, dict) else []
    for category in categories:
        for item in category.get("items", []):
            name = str(item.get("name") or "")
            words = _menu_words(name)
            found = [w for w in words if any(_close(w, v) for v in text_words)]
            if not words or len(found) * 2 < len(words):  # most of its words must be there
                return f"item {name[:60]!r} is not in the OCR text"
            price = item.get("price")
            if isinstance(price, int | float) and not any(abs(price - p) < 0.005 for p in prices):
                return f"price {price:g} of {name[:40]!r} is not in the OCR text"
    return None
