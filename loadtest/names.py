"""Ingredient lines for load tests, composed from parts so every run sees fresh text and repeats.

Not a copy of any data set: quantities, units, foods and preparations are combined at random,
with a share of exact repeats (as scrapers produce) and a little junk (which must end rejected).
"""

from __future__ import annotations

import random

QUANTITIES = [
    "1",
    "2",
    "3",
    "4",
    "1/2",
    "½",
    "¼",
    "1 1/2",
    "2-3",
    "200",
    "250",
    "500",
    "1.5",
    "a pinch of",
    "",
]
UNITS = [
    "cup",
    "cups",
    "tbsp",
    "tablespoons",
    "tsp",
    "teaspoon",
    "g",
    "grams",
    "kg",
    "oz",
    "lb",
    "ml",
    "l",
    "clove",
    "cloves",
    "can",
    "bunch",
    "slices",
    "",
]
FOODS = [
    "all-purpose flour",
    "unsalted butter",
    "eggs",
    "whole milk",
    "granulated sugar",
    "brown sugar",
    "kosher salt",
    "black pepper",
    "olive oil",
    "garlic",
    "yellow onion",
    "red onion",
    "shallots",
    "carrots",
    "celery",
    "tomatoes",
    "cherry tomatoes",
    "potatoes",
    "sweet potatoes",
    "spinach",
    "kale",
    "basil",
    "parsley",
    "cilantro",
    "thyme",
    "rosemary",
    "chicken breasts",
    "chicken thighs",
    "ground beef",
    "pork shoulder",
    "salmon fillets",
    "shrimp",
    "tofu",
    "chickpeas",
    "black beans",
    "lentils",
    "basmati rice",
    "spaghetti",
    "parmesan cheese",
    "cheddar cheese",
    "heavy cream",
    "greek yogurt",
    "lemon juice",
    "lime",
    "ginger",
    "soy sauce",
    "honey",
    "maple syrup",
    "baking powder",
    "baking soda",
    "vanilla extract",
    "cinnamon",
    "cumin",
    "paprika",
    "chili flakes",
    "coconut milk",
    "chicken stock",
    "vegetable broth",
    "mushrooms",
    "bell peppers",
    "zucchini",
    "avocados",
    "walnuts",
    "almonds",
    "dark chocolate",
    "oats",
    "bananas",
    "blueberries",
    "apples",
]
PREPS = [
    "",
    "",
    "",
    "chopped",
    "finely chopped",
    "diced",
    "minced",
    "sliced",
    "grated",
    "softened",
    "room temperature",
    "divided",
    "rinsed and drained",
    "to taste",
]
JUNK = [
    "",
    "   ",
    "paper towels",
    "<b>SALE</b>",
    "'; DROP TABLE ingredient_match_queue; --",
    "🔥🔥🔥",
    "2 AA batteries",
    "x" * 900,  # the API refuses names over 1,000 characters with a 400
    "aluminum foil",
    "N/A",
]


class NameSource:
    def __init__(self, seed: int = 7, repeat_share: float = 0.3, junk_share: float = 0.02) -> None:
        self.rng = random.Random(seed)
        self.repeat_share = repeat_share
        self.junk_share = junk_share
        self.seen: list[str] = []

    def next(self) -> str:
        r = self.rng.random()
        if r < self.junk_share:
            return self.rng.choice(JUNK)
        if self.seen and r < self.junk_share + self.repeat_share:
            return self.rng.choice(self.seen)
        parts = [self.rng.choice(QUANTITIES), self.rng.choice(UNITS), self.rng.choice(FOODS)]
        line = " ".join(p for p in parts if p)
        prep = self.rng.choice(PREPS)
        if prep:
            line = f"{line}, {prep}"
        self.seen.append(line)
        return line

    def batch(self, n: int) -> list[str]:
        return [self.next() for _ in range(n)]
