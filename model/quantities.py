"""Quantities and units at the start of an ingredient line: "1½ cups", "2 to 3 tbsp", "250g".

Physical units go through pint (mass and volume only: pint also knows "bar", "m" and "in",
which in a recipe line are words). Counted units ("clove", "can") come from the vocabulary.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from model.vocabulary import COUNT_UNITS, NUMBER_WORDS

# Kitchen abbreviations that pint reads differently ("c" is the speed of light, "T" a tesla).
_KITCHEN_ALIASES: dict[str, str] = {
    "c": "cup", "C": "cup", "T": "tablespoon", "Tbsp": "tablespoon", "Tb": "tablespoon",
    "tbs": "tablespoon", "tbl": "tablespoon", "tblsp": "tablespoon", "tbsp": "tablespoon",
    "t": "teaspoon", "tsp": "teaspoon", "ts": "teaspoon", "fl oz": "fluid_ounce",
    "fl. oz": "fluid_ounce", "fluid ounce": "fluid_ounce", "fl": "fluid_ounce", "lbs": "pound",
    "cc": "milliliter", "pkg": "package",
}  # fmt: skip

_VULGAR = "".join(
    ch for ch in map(chr, range(0x00BC, 0x2190)) if unicodedata.name(ch, "").startswith("VULGAR")
)
_NUM = r"(?:\d*\s?[" + _VULGAR + r"]|\d+(?:[.,]\d+)?(?:\s+\d+/\d+|/\d+)?)"
_RANGE = re.compile(
    r"^\s*(?:about|approximately|approx\.?|roughly|around|some|up\s+to)?\s*"
    r"(?P<a>" + _NUM + r")(?:\s*(?:-|\u2013|\u2014|to|or)\s*(?P<b>" + _NUM + r"))?(?![\d%/])",
    re.IGNORECASE,
)
_SIZE_WORDS = (
    r"(?:small|medium|medium-size|medium-sized|large|lg|sm|heaping|heaped|level|scant|generous|big|good"
    r"|thin|thick)"
)
_SIZE = re.compile(r"^" + _SIZE_WORDS + r"\s+(?=\w+\s)", re.I)
_LEADING_SIZE = re.compile(r"^" + _SIZE_WORDS + r"\s+(?=\d|[" + _VULGAR + r"])", re.I)
# Lengths count as units only in these spellings ("a 1-inch piece"), never "m" or "in".
_LENGTH_UNITS = frozenset({"inch", "centimeter", "millimeter"})
_LENGTH_WORDS = frozenset({"inch", "cm", "mm", "centimeter", "millimeter", "centimetr", "millimetr"})
_ALTERNATE = re.compile(r"^/\s*")  # "1 cup/240 ml": the second measure repeats the first
# "4 x 200g/7oz salmon fillets", "2 x 400g tins": a count of packs of a size (the size in one
# or two measures); the count is the quantity, the size is dropped.
_MEASURE = r"\d+(?:[.,]\d+)?\s*[a-zA-Z]+\.?"
_TIMES_SIZE = re.compile(r"^[x\u00d7]\s*" + _MEASURE + r"(?:\s*/\s*" + _MEASURE + r")?\s+(?=\w)")
_GLUED = re.compile(r"(\d)([a-zA-Z])")  # "250g" -> "250 g"


@dataclass(frozen=True)
class Amount:
    quantity: float | None
    unit: str | None
    rest: str  # the line after the quantity and unit


def number(token: str) -> float | None:
    """ "1", "1.5", "1,5", "1/2", "1 1/2", "½", "1½" -> float; None if it is not a number."""
    token = token.strip()
    if not token:
        return None
    if token[-1] in _VULGAR:
        whole = token[:-1].strip()
        return (float(whole) if whole else 0.0) + unicodedata.numeric(token[-1])
    parts = token.split()
    try:
        if len(parts) == 2:
            return float(parts[0]) + _fraction(parts[1])
        if "/" in token:
            return _fraction(token)
        return float(token.replace(",", "."))
    except (ValueError, ZeroDivisionError):
        return None


def _fraction(text: str) -> float:
    num, den = text.split("/")
    return float(num) / float(den)


@functools.cache
def _registry() -> Any:
    import pint  # noqa: PLC0415 - building the registry takes a second; only the rules path needs it

    return pint.UnitRegistry(cache_folder=":auto:")  # parsed definitions cached on disk


@functools.cache
def canonical_unit(text: str | None) -> str | None:
    """A unit word as written -> its canonical name ("tbsp" -> "tablespoon"); None if not a unit."""
    if not text:
        return None
    word = text.strip().rstrip(".")
    if not word:
        return None
    word = _KITCHEN_ALIASES.get(word, _KITCHEN_ALIASES.get(word.lower(), word))
    lower = word.lower()
    from model.words import singular  # noqa: PLC0415 - keeps import order acyclic

    if singular(lower) in COUNT_UNITS:
        return singular(lower)
    if lower in COUNT_UNITS or word == "package":
        return lower
    if not re.fullmatch(r"[A-Za-z_ ]+", word):
        return None
    ureg = _registry()
    for candidate in (word, lower, singular(lower)):
        try:
            unit = ureg.parse_units(candidate.replace(" ", "_"))
        except Exception:  # noqa: S112 - pint raises several error types for unknown words
            continue
        name = str(unit).replace("_", " ")
        dims = unit.dimensionality
        if dims in (ureg.gram.dimensionality, ureg.liter.dimensionality) or (
            name in _LENGTH_UNITS and lower.rstrip("es") in _LENGTH_WORDS
        ):
            return name
    return None


def parse_amount(line: str) -> Amount:
    """Reads an optional leading quantity (the first number of a range) and unit."""
    text = _GLUED.sub(r"\1 \2", line.strip())
    text = re.sub(r"(?<=[a-zA-Z.])/(?=\s*\d)", " / ", text)
    text = _LEADING_SIZE.sub("", text)
    quantity: float | None = None
    m = _RANGE.match(text)
    if m:
        quantity = number(m.group("a"))
        text = text[m.end() :].strip()
    else:
        first, _, tail = text.partition(" ")
        if first.lower() in NUMBER_WORDS and tail:
            quantity = NUMBER_WORDS[first.lower()]
            text = tail.strip()
    if quantity is not None and re.match(r"dozen\b", text, re.IGNORECASE):  # "a dozen eggs", "2 dozen"
        quantity, text = quantity * 12, text[5:].strip()
    text = re.sub(r"^\([^)]*\)\s*", "", text)  # "1 (14-ounce) can": the can is the unit
    text = _TIMES_SIZE.sub("", text)  # "1 x 400g tin": the tin is the unit
    text = _SIZE.sub("", text)  # "1 small bunch": the bunch is the unit
    unit: str | None = None
    words = text.split()
    for size in (2, 1):
        head = " ".join(w.strip(".,") for w in words[:size])
        found = canonical_unit(head) if len(words) > size or size == 1 else None
        if found and (quantity is not None or size == 2 or head.lower() in COUNT_UNITS):
            unit = found
            text = " ".join(words[size:])
            break
    if quantity is not None and unit is None and text.startswith("-"):  # "1-inch piece"
        unit = canonical_unit(text[1:].split(" ", 1)[0])
        if unit is not None:
            text = text[1:].partition(" ")[2]
    if unit is not None and text.startswith("/"):
        text = parse_amount(_ALTERNATE.sub("", text)).rest
    text = re.sub(r"^(?:of|de)\s+", "", text, flags=re.IGNORECASE)
    return Amount(quantity=quantity, unit=unit, rest=text.strip())
