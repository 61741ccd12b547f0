"""Word forms: singular nouns through inflect, with the food words inflect gets wrong."""

from __future__ import annotations

import functools
from typing import Any

# Mass nouns that end like plurals; inflect would make "molass" and "hummu" of them.
_KEEP = frozenset({"molasses", "grits", "swiss", "brussels", "bitters", "schnapps", "greens", "oats"})
# Plurals inflect gets wrong ("chillies" -> "chilly", the adjective).
_IRREGULAR = {"chillies": "chilli", "chilies": "chili"}


@functools.cache
def _engine() -> Any:
    import inflect  # noqa: PLC0415 - loaded on first use, not at import

    return inflect.engine()


@functools.cache
def singular(word: str) -> str:
    """The singular form of one word (or of the last word of a phrase)."""
    if " " in word:
        head, _, last = word.rpartition(" ")
        return f"{head} {singular(last)}"
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) < 4 or word in _KEEP or word.endswith(("us", "ss", "is")):
        return word
    try:
        result = _engine().singular_noun(word)
    except Exception:
        return word
    return result if isinstance(result, str) and result else word
