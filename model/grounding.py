"""Is a model's answer about the line it was given?

A schema-valid answer can still be made up: measured on the labelled data (BENCHMARKS.md), a
small model answered "1 bunch fresh thyme" with "egg", copied from the prompt's example. Such
an answer would be written as `resolved`. So a model's name must be grounded in its line,
else the answer is invalid and the chain treats it like any invalid answer (retry, split,
next provider, the rules): one of the name's food words (not a unit, number, size or
preparation word) is a word of the line, a part of one ("bread" in "breadcrumbs") or a near
spelling; or the name is what the rules make of the line (their vocabulary maps synonyms:
"scallions" -> "green onion").

Deliberately lenient: a model may canonicalize ("extra-virgin olive oil" -> "olive oil");
what it may not do is answer about something else. A translation the rules do not know
("Kartoffeln" -> "potato") is refused too and the rules answer instead: a plainer answer
beats a wrong one. Quantity and unit are the rules' (the model is not asked for them).
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from model.ingredient_types import IngredientAnswer
from model.quantities import canonical_unit
from model.rules import fold_accents, tidy_model_name
from model.schemas import QUOTE_CHARS
from model.vocabulary import COUNT_UNITS, NUMBER_WORDS, PREPARATION_WORDS
from model.words import singular

_WORD = re.compile(r"[a-z]+")
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


def ungrounded_name_reason(text: str, name: str, rules: IngredientAnswer) -> str | None:
    """Why a model's name is not about its line, or None when it is. `rules` is the rules'
    answer for the same line (its name counts as grounded: synonyms the line does not spell)."""
    name_words = _food_words(name) | _food_words(tidy_model_name(name))  # synonyms mapped
    if not name_words:
        return f"name {name!r} has no food word"
    line_words = _food_words(text) | _food_words(rules.canonical_name or "")
    if not any(_close(w, v) for w in name_words for v in line_words):
        return f"name {name!r} is not about {text[:QUOTE_CHARS]!r}"
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
                return f"item {name[:QUOTE_CHARS]!r} is not in the OCR text"
            price = item.get("price")
            if isinstance(price, int | float) and not any(abs(price - p) < 0.005 for p in prices):
                return f"price {price:g} of {name[:QUOTE_CHARS]!r} is not in the OCR text"
    return None
