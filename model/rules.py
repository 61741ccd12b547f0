"""The rules provider: deterministic, offline, the last resort of the chain and the default when
no model is configured.

A line goes through: junk checks (empty, too long, markup, SQL, URLs, symbols only), the
leading quantity and unit (model.quantities), then the name: parentheticals, brands,
preparation words and trailing comments are dropped, the head word made singular, and the
phrase mapped onto the canonical vocabulary (exact, synonym, longest known tail, then a fuzzy
match for misspellings). Non-food items are rejected with the reason.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from rapidfuzz import fuzz, process

from model.ingredient_types import IngredientAnswer, normalize_name
from model.quantities import Amount, canonical_unit, parse_amount
from model.vocabulary import (
    BRANDS,
    CANONICAL,
    COMPOUND_NAMES,
    COUNT_UNITS,
    MINCE_WORDS,
    NON_FOOD,
    NUMBER_WORDS,
    PLACEHOLDERS,
    PREPARATION_WORDS,
    SYNONYMS,
    TAIL_MARKERS,
)
from model.words import singular

RULES_VERSION = "rules-v4"  # bump when answers change: cached rules answers are keyed on it
MAX_INPUT_CHARS = 300  # real ingredient lines are under ~200 characters
MAX_NAME_WORDS = 8
NON_FOOD_REASON = "not a food item"  # how a rejection for a named non-food thing starts

# The confidence ladder: how sure the rules are of a name, by how they found it.
EXACT_CONFIDENCE = 0.95  # the phrase is a vocabulary entry
SYNONYM_CONFIDENCE = 0.92  # a synonym of one ("scallions" -> green onion, "pork mince" -> ground pork)
TAIL_CONFIDENCE = 0.8  # the longest known tail of the phrase ("smoked trout" -> trout)
PAIR_CONFIDENCE = 0.75  # "salt and pepper": two known names, each found at TAIL_CONFIDENCE or better
# A name found by near spelling: the one step where the rules put a different word than the
# line's ("floour" -> flour, but also "broccolini" -> broccoli).
NEAR_SPELLING_CONFIDENCE = 0.7
UNKNOWN_PHRASE_CONFIDENCE = 0.5  # a phrase the vocabulary does not know: the line's own words
# rapidfuzz ratio cut-offs: a near spelling of a vocabulary entry, and of a non-food thing
# (closer, so that "batter" is not "battery").
NEAR_SPELLING_CUTOFF = 88
NON_FOOD_SPELLING_CUTOFF = 95

_HTML = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>|&(?:lt|gt|amp|quot|#\d+);")
_SQL = re.compile(
    r"\bselect\b.+\bfrom\b|\binsert\s+into\b|\bdelete\s+from\b|\b(drop|alter|truncate)\s+(table|database)\b"
    r"|\bunion\s+(all\s+)?select\b|\bupdate\s+\w+\s+set\b|\bexec(ute)?\s*\(|;\s*--|'\s*;|--\s*$"
    r"|\b(or|and)\s+'?\w+'?\s*=\s*'?\w+'?\s*(--|#|$)|'\s*(or|and)\s+'",
    re.IGNORECASE | re.DOTALL,
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_TRADEMARK = re.compile(r"\S+\s*[®™©]")
_PAREN = re.compile(r"\([^)\]]*[)\]]?|\[[^\]]*\]?")
# "For the dressing:", "FOR THE SAUCE", "To garnish:", "Salad:": a recipe's section heading.
_HEADING = re.compile(
    r"^\s*(?:(?:for|to make|to serve|to garnish|to finish|to go with)\b[^\d,:]{0,40}:?|[^\d,:]{1,40}:)\s*$",
    re.IGNORECASE,
)
_CONSONANT_RUN = re.compile(r"[b-df-hj-np-tv-xz]{6,}", re.IGNORECASE)
_WORD = re.compile(r"[a-z][a-z'&\-]*")
_NUMBER_UNIT = re.compile(r"\b\d+(?:[./]\d+)?\s*-\s*[a-z]+\b")  # "15-ounce", "9-inch": a size, not the amount


def resolve_with_rules(text: str | None, raw_unit: str | None = None) -> IngredientAnswer:
    """One ingredient line -> a resolved or rejected answer (never raises, never `failed`)."""
    key = normalize_name(text)
    reason = junk_reason(text)
    if reason is not None:
        return _rejected(key, reason)
    assert text is not None
    line = _clean_line(text)
    amount = parse_amount(line)
    if amount.quantity is None:  # "Lemon juice, 3 tablespoons", "Juice of 1 lime"
        late = _LATE_NUMBER.search(line)
        if late is not None:
            tail = parse_amount(line[late.start(1) :])
            before = line[: late.start(1)]
            # "Lemon juice, 3 tablespoons" or "juice of 1 lime"; not "ground beef 80/20"
            if tail.quantity is not None and (tail.unit or re.search(r"\bof\s*$", before, re.IGNORECASE)):
                amount = Amount(tail.quantity, tail.unit, f"{before} {tail.rest}")
    name = _name_phrase(amount.rest)
    if not name and amount.unit in CANONICAL:  # "8 cloves"
        name, amount = amount.unit, Amount(amount.quantity, None, amount.rest)
    if not name:
        return _rejected(key, "no ingredient name (only a quantity, unit or preparation words)")
    non_food = _non_food(name)
    if non_food is not None:
        return _rejected(key, f"{NON_FOOD_REASON}: {non_food}")
    unit = amount.unit
    if unit is None:
        name, unit = _trailing_unit(name)
    canonical, confidence = _canonical_pair(name)
    unit = unit or canonical_unit(raw_unit)
    return IngredientAnswer(
        key=key,
        status="resolved",
        canonical_name=canonical,
        quantity=amount.quantity,
        unit=unit,
        confidence=confidence,
        provider="rules",
        reason=None,
    )


def tidy_model_name(name: str) -> str:
    """A model's canonical name in the rules' vocabulary: lower case, singular, synonyms mapped
    ("Scallions" -> "green onion"), so every provider fills the cache with the same names."""
    phrase = " ".join(fold_accents(name.lower()).split())
    single = singular(phrase) if phrase and len(phrase.split()) <= MAX_NAME_WORDS else phrase
    return SYNONYMS.get(single, SYNONYMS.get(phrase, single))


def warm_up() -> None:
    """Loads pint, inflect and the caches (a few seconds): call it in a parent process before
    forking work horses, so each job does not pay for it again."""
    resolve_with_rules("1 ½ cups chopped tomatoes")


def junk_reason(text: str | None) -> str | None:
    """Why a line can never be an ingredient, or None when it might be one."""
    if text is None or not text.strip():
        return "empty input"
    if len(text) > MAX_INPUT_CHARS:
        return f"input too long ({len(text)} characters; an ingredient line has at most {MAX_INPUT_CHARS})"
    if _HTML.search(text):
        return "contains HTML markup, not an ingredient"
    if _URL.search(text):
        return "contains a URL, not an ingredient"
    if _SQL.search(text):
        return "looks like SQL, not an ingredient"
    if " ".join(text.casefold().split()).strip(" .!?") in PLACEHOLDERS:
        return "a placeholder or test value, not an ingredient"
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    if not letters:
        return "no words (only digits, symbols or emoji)"
    if any(unicodedata.category(ch) == "So" for ch in text) and len(letters) < 3:
        return "no words (only digits, symbols or emoji)"
    if _HEADING.match(text) and len(text.split()) <= 6:
        return "a section heading of the recipe, not an ingredient"
    if _CONSONANT_RUN.search(text):  # six consonants in a row: no English food word has that
        return "does not look like words (keyboard noise)"
    return None


def _clean_line(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        ch for ch in text if unicodedata.category(ch)[0] != "C" and unicodedata.category(ch) != "So"
    )
    text = _TRADEMARK.sub(" ", text)
    text = _PAREN.sub(" ", text)
    text = _COMPOUND.sub(lambda m: COMPOUND_NAMES[_compound_key(m.group(0))], text)
    return " ".join(text.split())


# "half and half", "half & half", "Half 'n' Half": one ingredient, not a pair.
_COMPOUND = re.compile(
    "|".join(
        r"\b" + r"\s*(?:and|&|'n'|'n|n'|n)\s*".join(map(re.escape, name.split(" and "))) + r"\b"
        for name in sorted(COMPOUND_NAMES, key=len, reverse=True)
    ),
    re.IGNORECASE,
)


def _compound_key(found: str) -> str:
    words = re.split(r"\s*(?:\band\b|&|'n'|'n|n'|\bn\b)\s*", found.lower())
    return " and ".join(w for w in words if w)


def _name_phrase(rest: str) -> str:
    """The ingredient phrase of what follows the amount: lower case ASCII, without comments."""
    text = " " + fold_accents(rest.lower()).replace("and/or", "or") + " "
    for phrase, canonical in _PREP_SYNONYMS:  # "fresh coriander" is cilantro: before "fresh" goes
        text = re.sub(rf"(?<![\w-]){re.escape(phrase)}(?:e?s)?(?![\w-])", canonical, text)
    text = _PART_OF.sub(r" \g<whole> \g<part> ", text)
    text = _PICKED_FROM.sub(" ", text)
    heading, colon, after = text.partition(":")
    if colon and len(heading.split()) <= 3 and _has_name(after):  # "Garnish: orange twist"
        text = " " + after
    for marker in TAIL_MARKERS:
        at = text.find(marker)
        if at > 0 and _has_name(text[:at]):  # not "frozen mixed vegetables": nothing before it
            text = text[:at] + " "
    text = _NUMBER_UNIT.sub(" ", text)
    unbranded = text
    for brand in sorted(BRANDS, key=len, reverse=True):
        if brand in unbranded:
            unbranded = re.sub(rf"(?<![\w']){re.escape(brand)}(?![\w'])", " ", unbranded)
    if _has_name(unbranded):  # "3 tbsp Crisco": a brand alone is the name
        text = unbranded
    for segment in re.split(r"[,;:]", text):
        words = _content_words(segment)
        if words:
            return " ".join(_first_choice(words)[-MAX_NAME_WORDS:])
    return ""


def _has_name(text: str) -> bool:
    return any(_content_words(segment) for segment in re.split(r"[,;:]", text))


def fold_accents(text: str) -> str:
    """ "crème fraîche" -> "creme fraiche" (names match the ASCII vocabulary)."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _content_words(segment: str) -> list[str]:
    words = [w.strip("'-") for w in _WORD.findall(segment)]
    words = [w for w in words if w and w not in PREPARATION_WORDS and w not in _FILLER]
    # "5 cracked juniper berries": a participle before the name that is no vocabulary word
    # (unlike "dried", "smoked", "condensed") describes the preparation.
    # A segment of participles alone ("washed, hulled, and dried strawberries") names nothing.
    if all(_is_participle(w) or w in {"and", "or"} for w in words):
        return []
    words = [w for i, w in enumerate(words) if i == len(words) - 1 or not _is_participle(w)]
    while words and (
        canonical_unit(words[0]) or words[0] in {"and", "or", "with"} or words[0] in NUMBER_WORDS
    ):
        if len(words) == 1 and singular(words[0]) in CANONICAL:
            break  # "½ teaspoon cloves": the unit word is the food
        words.pop(0)  # "8-oz container creme fraiche": leftovers of a size
    while words and (words[-1] in {"and", "or", "with", "in", "into", "to"} or _is_physical_unit(words[-1])):
        words.pop()
    return words


def _first_choice(words: list[str]) -> list[str]:
    """ "butter or margarine" -> butter; "jalapeno or serrano chiles" -> jalapeno chiles."""
    choices = [c.split() for c in " ".join(words).split(" or ") if c.strip()]
    if not choices:
        return []
    first, last = choices[0], choices[-1]
    if len(first) == 1 and len(last) >= 2 and singular(first[0]) not in CANONICAL:
        return [first[0], last[-1]]
    if len(first) == 1 and len(choices) > 1 and _is_modifier(first[0]):
        return [first[0], last[-1]]  # "whole or diced tomatoes", "extra-firm or firm tofu"
    return first


# Words that describe the ingredient that follows ("whole milk", "extra-firm tofu"): a name
# made of them alone is a fragment.
_MODIFIERS = frozenset({"whole", "extra", "half", "light", "dark", "regular", "plain", "reduced"})


def _is_modifier(word: str) -> bool:
    return word in _MODIFIERS or (
        "-" in word and word.split("-", maxsplit=1)[0] in {"extra", "low", "reduced", "non", "full"}
    )


def _is_physical_unit(word: str) -> bool:
    unit = canonical_unit(word)
    return unit is not None and unit not in COUNT_UNITS


_LATE_NUMBER = re.compile(r"(?:^|[\s,])(\d+(?:[./]\d+)?|\d*[\u00bc-\u00be\u2150-\u215e])\s*(?=[a-zA-Z]|$)")
# "juice of 1 lime" -> "lime juice"; "leaves from 1 sprig rosemary" -> "rosemary".
_PART_OF = re.compile(
    r"^\s*(?:grated\s+|finely\s+grated\s+)?(?P<part>juice|zest|peel|rind)(?:\s+and\s+[\w\s]+?)?\s+(?:of|from)\s+"
    r"(?:an?\s+|about\s+)?(?P<whole>.*)$"
)
_PICKED_FROM = re.compile(
    r"^\s*(?:leaves|stems|kernels|seeds|florets|meat|flesh)\s+(?:cut\s+|picked\s+)?(?:of|from)\s+"
)
_FILLER = frozenset(
    {"of", "the", "a", "an", "any", "other", "some", "not", "lg", "sm", "med", "md", "each", "very"}
)
# Synonyms that start with a preparation word: matched before such words are dropped.
_PREP_SYNONYMS = sorted(
    ((k, v) for k, v in SYNONYMS.items() if k.split()[0] in PREPARATION_WORDS and " " in k),
    key=lambda kv: len(kv[0]),
    reverse=True,
)
_VOCABULARY_WORDS = frozenset(w for entry in CANONICAL for w in re.split(r"[\s-]", entry))


def _is_participle(word: str) -> bool:
    if word.startswith(_ADVERB_PREFIXES):  # "well-shaken", "freshly-ground"
        return True
    return (
        len(word) >= 5 and word.endswith("ed") and not word.endswith("eed") and word not in _VOCABULARY_WORDS
    )


_ADVERB_PREFIXES = (
    "well-",
    "freshly-",
    "finely-",
    "lightly-",
    "roughly-",
    "coarsely-",
    "thinly-",
    "thickly-",
)


# Count units written after the name: "2 garlic cloves", "3 celery ribs".
_TRAILING_UNITS = frozenset({"clove", "sprig", "stalk", "bunch", "head", "rib", "ear", "stick", "slice"})


def _trailing_unit(name: str) -> tuple[str, str | None]:
    words = name.split()
    last = singular(words[-1])
    if (
        len(words) > 1
        and last in _TRAILING_UNITS
        and singular(name) not in CANONICAL
        and not all(_is_modifier(w) for w in words[:-1])  # "whole cloves" is the spice
    ):
        return " ".join(words[:-1]), last
    return name, None


def _canonical_pair(name: str) -> tuple[str, float]:
    """ "salt and pepper" stays a pair when both halves are known ingredients."""
    if " and " in name and singular(name) not in CANONICAL:
        parts = [canonicalize(p.strip()) for p in name.split(" and ", 1)]
        if all(conf >= TAIL_CONFIDENCE for _, conf in parts):
            return " and ".join(p for p, _ in parts), PAIR_CONFIDENCE
    return canonicalize(name)


@functools.cache
def canonicalize(phrase: str) -> tuple[str, float]:
    """A cleaned name phrase -> (canonical name, confidence)."""
    forms = [singular(phrase), phrase]
    for form in forms:
        if form in SYNONYMS:
            return SYNONYMS[form], SYNONYM_CONFIDENCE
        if form in CANONICAL:
            return form, EXACT_CONFIDENCE
    words = forms[0].split()
    if len(words) >= 2 and " ".join(words[1:]) in MINCE_WORDS and f"ground {words[0]}" in CANONICAL:
        return f"ground {words[0]}", SYNONYM_CONFIDENCE  # "pork mince" is ground pork, not the bare "mince"
    for start in range(1, len(words)):  # longest known tail: "smoked trout" -> "trout"
        tail = " ".join(words[start:])
        if tail in SYNONYMS:
            return SYNONYMS[tail], TAIL_CONFIDENCE
        if tail in CANONICAL:
            return tail, TAIL_CONFIDENCE
    match = process.extractOne(forms[0], _VOCABULARY, scorer=fuzz.ratio, score_cutoff=NEAR_SPELLING_CUTOFF)
    if match is not None:
        found = match[0]
        return SYNONYMS.get(found, found), NEAR_SPELLING_CONFIDENCE
    return forms[0], UNKNOWN_PHRASE_CONFIDENCE


_VOCABULARY: tuple[str, ...] = tuple(sorted(CANONICAL | set(SYNONYMS)))


def _non_food(phrase: str) -> str | None:
    """The non-food thing the phrase names. Only its head counts: "paper towels" and "wooden
    skewers" are not food, "sponge ladyfingers" and "charcoal-grilled corn" are."""
    name = singular(phrase)
    words = name.split()
    for size in range(len(words), 0, -1):
        part = " ".join(words[len(words) - size :])
        if part in NON_FOOD and part not in CANONICAL:
            return part
    # Misspellings of a non-food item.
    match = process.extractOne(name, NON_FOOD, scorer=fuzz.ratio, score_cutoff=NON_FOOD_SPELLING_CUTOFF)
    return match[0] if match is not None else None


def _rejected(key: str, reason: str) -> IngredientAnswer:
    return IngredientAnswer.rejected(key, reason, provider="rules")
