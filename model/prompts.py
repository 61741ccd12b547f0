"""Prompts. PROMPT_VERSION is part of the canonical-cache key: change it whenever a prompt
or schema change could change answers, and old cache entries stop being served.

The system prompt is one constant string and the lines go in the user turn only, so every
request starts with the same bytes and a server's prefix cache (vLLM, llama.cpp) reuses the
system prompt's computation across requests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

PROMPT_VERSION = "ingredients-v2"
MAX_LINE_CHARS = 300

INGREDIENT_SYSTEM = """You name the food in recipe ingredient lines.
The user sends a JSON array of lines. Reply {"names": [...]} with one entry per line, in order.
An entry is the food's plain generic name in American English: lower case, singular, without \
amounts, sizes, brands, preparation or comments, keeping the words that say which food it is.
Use null only for a line that is not food (kitchen tools, household goods, gibberish).
Example: ["2 large eggs, beaten", "1 lb pork mince", "paper towels", "4 x 200g salmon fillets"] \
-> {"names": ["egg", "ground pork", null, "salmon"]}"""


def ingredient_user_message(texts: Sequence[str]) -> str:
    """The user turn: the lines as a JSON array of strings."""
    return json.dumps([text[:MAX_LINE_CHARS] for text in texts], ensure_ascii=False)


def parse_ingredient_user_message(message: str) -> list[str]:
    """The lines back out of a user turn (the simulator reads requests with this)."""
    try:
        lines = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the user turn is not a JSON array of lines: {exc.msg}") from None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ValueError("the user turn is not a JSON array of lines")
    return lines
