"""Menus rendered for tests: random from a seed, so the extraction is tested on menus in general.

Each menu has a restaurant name, categories with items and prices (one currency per menu, $, €
or £, always with decimals), dotted leaders between name and price, optional descriptions,
one or two columns, phone / hours / address lines, a font drawn from the installed DejaVu and
Liberation families, a small rotation (up to ±2°), pixel noise and JPEG compression.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps
from rapidfuzz import fuzz

FONT_DIR = Path("/usr/share/fonts/truetype")
FONTS = [
    ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf"),
    ("dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSerif-Bold.ttf"),
    ("dejavu/DejaVuSansCondensed.ttf", "dejavu/DejaVuSansCondensed-Bold.ttf"),
    ("liberation/LiberationSans-Regular.ttf", "liberation/LiberationSans-Bold.ttf"),
    ("liberation/LiberationSerif-Regular.ttf", "liberation/LiberationSerif-Bold.ttf"),
    ("liberation/LiberationSansNarrow-Regular.ttf", "liberation/LiberationSansNarrow-Bold.ttf"),
]
CATEGORIES = [
    "Starters", "Appetizers", "Soups", "Salads", "Mains", "Entrees", "Pasta", "Pizza",
    "Burgers", "Seafood", "Sides", "Desserts", "Drinks", "Breakfast", "Sandwiches",
]  # fmt: skip
ADJECTIVES = [
    "Grilled", "Roasted", "Smoked", "Crispy", "Braised", "Spicy", "Garlic", "Lemon", "Honey",
    "Classic", "House", "Wild", "Fresh", "Baked", "Seared", "Creamy", "Golden", "Rustic",
]  # fmt: skip
DISHES = [
    "Salmon", "Chicken", "Risotto", "Burger", "Ravioli", "Lasagna", "Tacos", "Shrimp",
    "Mushrooms", "Meatballs", "Cheesecake", "Brownie", "Pancakes", "Omelette", "Calamari",
    "Gnocchi", "Lamb Chops", "Pork Belly", "Tofu Bowl", "Caesar Salad", "Tomato Soup",
    "Fish and Chips", "Steak Frites", "Apple Pie", "Lemonade", "Iced Tea", "Bruschetta",
]  # fmt: skip
DESCRIPTIONS = [
    "served with seasonal vegetables", "with herbs and olive oil", "topped with fresh basil",
    "with a side of fries", "slow cooked for six hours", "finished with sea salt",
    "on a toasted brioche bun", "with house made sauce",
]  # fmt: skip
STREETS = ["Main Street", "Oak Avenue", "Harbor Road", "Market Lane", "Elm Street"]


@dataclass(frozen=True)
class MenuItem:
    name: str
    price: str  # decimal string, e.g. "12.50"


@dataclass
class RenderedMenu:
    image: bytes
    currency: str  # "USD" | "EUR" | "GBP"
    categories: dict[str, list[MenuItem]]
    superfluous: list[str] = field(default_factory=list)

    @property
    def items(self) -> list[MenuItem]:
        return [item for items in self.categories.values() for item in items]


def _price_text(rng: random.Random, amount: str, currency: str) -> str:
    if currency == "EUR" and rng.random() < 0.5:
        return f"{amount} €"
    return {"USD": "$", "EUR": "€", "GBP": "£"}[currency] + amount


def _content(rng: random.Random) -> tuple[str, dict[str, list[MenuItem]], dict[MenuItem, str]]:
    currency = rng.choice(["USD", "EUR", "GBP"])
    categories: dict[str, list[MenuItem]] = {}
    descriptions: dict[MenuItem, str] = {}
    used: set[str] = set()
    for cat in rng.sample(CATEGORIES, rng.randint(2, 4)):
        items = []
        for _ in range(rng.randint(3, 5)):
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(DISHES)}"
            while name in used:
                name = f"{rng.choice(ADJECTIVES)} {rng.choice(DISHES)}"
            used.add(name)
            item = MenuItem(name, f"{rng.randint(3, 39)}.{rng.choice(['00', '50', '95', '25', '75'])}")
            items.append(item)
            if rng.random() < 0.3:
                descriptions[item] = rng.choice(DESCRIPTIONS)
        categories[cat] = items
    return currency, categories, descriptions


def render_menu(seed: int, *, two_columns: bool | None = None) -> RenderedMenu:
    """A random menu photo (JPEG bytes) and what it says."""
    rng = random.Random(seed)
    currency, categories, descriptions = _content(rng)
    two_col = rng.random() < 0.5 if two_columns is None else two_columns
    regular, bold = (str(FONT_DIR / p) for p in rng.choice(FONTS))
    size = rng.randint(26, 32)
    body = ImageFont.truetype(regular, size)
    small = ImageFont.truetype(regular, int(size * 0.8))
    heading = ImageFont.truetype(bold, int(size * 1.25))
    title = ImageFont.truetype(bold, int(size * 1.7))

    col_width = 760
    gutter = 120
    margin = 70
    width = margin * 2 + col_width * (2 if two_col else 1) + (gutter if two_col else 0)
    height = 2600
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    line_h = int(size * 1.5)
    name = (
        f"{rng.choice(['The', 'Chez', 'Casa', 'Cafe'])} {rng.choice(['Olive', 'Harbor', 'Garden', 'Copper'])}"
    )
    draw.text((margin, margin), name, font=title, fill=0)
    y0 = margin + int(size * 3)

    cats = list(categories.items())
    split = (len(cats) + 1) // 2 if two_col else len(cats)
    columns = [cats[:split], cats[split:]] if two_col else [cats]
    bottom = y0
    for col_index, col in enumerate(columns):
        x = margin + col_index * (col_width + gutter)
        y = y0
        for cat, items in col:
            draw.text((x, y), cat.upper() if rng.random() < 0.5 else cat, font=heading, fill=0)
            y += int(line_h * 1.4)
            for item in items:
                price = _price_text(rng, item.price, currency)
                draw.text((x, y), item.name, font=body, fill=0)
                name_w = draw.textlength(item.name, font=body)
                price_w = draw.textlength(price, font=body)
                draw.text((x + col_width - price_w, y), price, font=body, fill=0)
                dot_w = draw.textlength(".", font=body)
                start, end = x + name_w + dot_w * 2, x + col_width - price_w - dot_w * 2
                if end > start:
                    draw.text((start, y), "." * int((end - start) / dot_w), font=body, fill=0)
                y += line_h
                if item in descriptions:
                    draw.text((x + 10, y), descriptions[item], font=small, fill=70)
                    y += line_h
            y += line_h // 2
        bottom = max(bottom, y)

    street = f"{rng.randint(10, 999)} {rng.choice(STREETS)}"
    phone = f"({rng.randint(200, 989)}) {rng.randint(200, 989)}-{rng.randint(1000, 9999)}"
    hours = f"Open daily {rng.randint(7, 11)}am - {rng.randint(8, 11)}pm"
    superfluous = [street, f"Tel: {phone}", hours]
    y = bottom + line_h
    for text in superfluous:
        draw.text((margin, y), text, font=small, fill=0)
        y += line_h
    page = page.crop((0, 0, width, min(height, y + margin)))
    return RenderedMenu(_photograph(rng, page), currency, categories, superfluous)


def _photograph(rng: random.Random, page: Image.Image) -> bytes:
    """Rotation up to ±2°, blur, pixel noise and JPEG compression: a phone photo, roughly."""
    angle = rng.uniform(-2.0, 2.0)
    img = page.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    noise = _noise(rng, img.size, rng.uniform(8, 16))
    img = Image.blend(img, noise, 0.08).convert("RGB")
    return _encode(img, "JPEG", quality=rng.randint(55, 80))


def _noise(rng: random.Random, size: tuple[int, int], sigma: float) -> Image.Image:
    """Gaussian pixel noise around mid-grey, drawn from the menu's own seed. (Pillow's
    `effect_noise` draws from C's process-wide rand(), so a menu came out different after other
    menus had been rendered in the same process, and a test's result hung on the test order.)"""
    gen = np.random.default_rng(rng.randrange(2**32))
    pixels = np.clip(gen.normal(128.0, sigma, (size[1], size[0])), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "L")


def _encode(img: Image.Image, fmt: str, **options: int) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def match_items(got: list[tuple[str, float | None]], truth: list[MenuItem]) -> int:
    """True positives: same price and a name at least 90% similar, each truth item once."""
    left = [(t.name.lower(), float(t.price)) for t in truth]
    hits = 0
    for name, price in got:
        for t in left:
            if t[1] == price and fuzz.ratio(t[0], name.lower()) >= 90:
                left.remove(t)
                hits += 1
                break
    return hits


def on_dark_background(image: bytes) -> bytes:
    """The same menu as light text on a dark board (a chalkboard or a dark-mode screenshot)."""
    return _encode(ImageOps.invert(Image.open(io.BytesIO(image)).convert("RGB")), "JPEG", quality=90)


def on_transparent_background(image: bytes) -> bytes:
    """The same menu as a PNG of black text on a transparent background (an exported design)."""
    gray = Image.open(io.BytesIO(image)).convert("L")
    rgba = Image.new("RGBA", gray.size, (0, 0, 0, 0))
    rgba.putalpha(ImageOps.invert(gray))
    return _encode(rgba, "PNG")


def in_dim_light(image: bytes) -> bytes:
    """The same menu photographed in dim light: grey text on grey paper (levels 90-180)."""
    gray = Image.open(io.BytesIO(image)).convert("L").point(lambda v: 90 + v * 0.35)
    return _encode(gray, "JPEG", quality=85)


def turned(degrees: float) -> Callable[[bytes], bytes]:
    """The same menu photographed `degrees` off level (anticlockwise); 90 is sideways."""

    def photograph(image: bytes) -> bytes:
        img = Image.open(io.BytesIO(image)).convert("L")
        img = img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
        return _encode(img, "JPEG", quality=90)

    return photograph
