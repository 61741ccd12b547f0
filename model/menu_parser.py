"""The deterministic menu parser: OCR lines → categories, items, prices.

The last provider of the menu chain, and the embedded default without a model. Rules:
- a line ending in a price ($12.50, €9,95, 9.95 €, £7.00, $38, 8.5; dotted leaders between) is
  an item; so is one ending in a bare whole number (Tiramisu 9) when the name starts with a
  capital and the number cannot be a count (Platter for 2, Table 12) or a year; several prices
  (Margherita 10.00 / 14.00, one per size) give the item the first; a price alone on a line
  belongs to the item name just before it;
- a short line without digits that is taller than the body text, or in capitals, or ends in
  ':' is a category heading;
- a lower-case or smaller line right after an item is that item's description;
- phone numbers, opening hours, addresses, e-mail, web and social-media addresses, and notices
  (allergies, service charge, taxes) are superfluous text, and so is what comes before the
  first heading or item (the restaurant's name).
Items whose words OCR'd with low confidence or that lack a price go to uncertainItems too.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CURRENCY_BY_SYMBOL = {"$": "USD", "€": "EUR", "£": "GBP"}
_PRICE = (
    r"(?P<pre>[$€£])?\s?(?P<amount>\d{1,4}(?P<decimals>[.,]\d{1,2})?)(?![\d.,]?\d)\s?"
    r"(?P<post>[$€£]|EUR|USD|GBP)?"
)
PRICE_AT_END = re.compile(rf"^(?P<name>.*?)[\s.\u2026·_\-\u2013\u2014:]*{_PRICE}\s*$")
PRICE_ONLY = re.compile(rf"^\s*{_PRICE}\s*$")
_ONE_PRICE = r"[$€£]?\s?\d{1,4}(?:[.,]\d{1,2})?\s?(?:[$€£]|EUR|USD|GBP)?"
# "Burger 15 / 18", "Pizza 12 | 16", "Coffee 3.50/4.50": one price per size at the end.
_SEVERAL_PRICES = re.compile(
    rf"(?<=[^\d\s/|])\s+(?P<first>{_ONE_PRICE})(?P<rest>(?:\s*[/|]\s*(?:\(\w+\)\s*)?{_ONE_PRICE})+)\s*$"
)
PHONE = re.compile(r"(\+?\d[\d\s().-]{7,}\d)|\b(tel|phone|call)\b", re.IGNORECASE)
HOURS = re.compile(
    r"\b\d{1,2}(:\d{2})?\s?(am|pm)\b|\b\d{1,2}:\d{2}\s*[-\u2013]|^(open|hours|closed)\b|"
    r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*\s*[-\u2013]\s*(mon|tue|wed|thu|fri|sat|sun)",
    re.IGNORECASE,
)
ADDRESS = re.compile(
    r"^\d+\s+\w+.*\b(street|st|avenue|ave|road|rd|lane|ln|boulevard|blvd|drive|dr|way|place|pl|square)\b",
    re.IGNORECASE,
)
WEB = re.compile(
    r"(www\.|https?://|@\w+\.\w+|\.com\b|(^|\s)@\w{2,}|\b(instagram|facebook|tiktok|twitter)\b)",
    re.IGNORECASE,
)
NOTICE = re.compile(
    r"\b(allerg\w*|gratuity|service charge|tax(es)? (not )?included|plus tax|consuming raw|"
    r"undercooked|prices? (are )?subject|please (ask|inform|let|note))\b",
    re.IGNORECASE,
)
# The word before a bare trailing number that makes it a count or a label, not a price.
# fmt: off
_NOT_PRICE_BEFORE = frozenset({
    "for", "serves", "x", "no", "no.", "#", "nr", "number", "table", "route", "suite", "page",
    "step", "size", "of", "and", "&", "+", "the", "top", "vol", "vol.", "part", "level",
})
# fmt: on
LOW_CONFIDENCE = 0.6


@dataclass(frozen=True)
class Line:
    """One line of menu text; height 0 when unknown (plain text input)."""

    text: str
    confidence: float = 1.0
    height: float = 0.0


@dataclass
class Item:
    name: str
    price: float | None
    confidence: float
    description: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "price": self.price,
            "confidence": round(self.confidence, 3),
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Category:
    name: str
    items: list[Item] = field(default_factory=list)


# The decimal point read as ':', ';', '°', '(' or as a 1/5/7 between the digits; € read as C.
_OCR_PRICE = re.compile(r"(?P<pre>[$€£C])(?P<int>\d{1,2})[:;°(157]?(?P<dec>\d{2})[)|,]?$")
# A suffix euro with stray punctuation, or read as ¢ or ©.
_OCR_PRICE_SUFFIX = re.compile(r"(?P<int>\d{1,2})[.,:;°(](?P<dec>\d{2})[,.;']?\s?[€¢©]$")


def fix_ocr_price(text: str) -> str:
    """Repairs a currency-marked price at the end of a line: '£8:25' → '£8.25',
    '£1275)' → '£12.75', '6.75,€' → '6.75 €'. Anything else is left as it is."""
    text = text.rstrip()
    suffix = _OCR_PRICE_SUFFIX.search(text)
    if suffix:
        return f"{text[: suffix.start()]}{suffix['int']}.{suffix['dec']} €"
    head, _, last = text.rpartition(" ")
    match = _OCR_PRICE.match(last)
    if not match or (match["pre"] == "C" and len(last) < 5):  # "Suite C101" is not a price
        return text
    symbol = "€" if match["pre"] == "C" else match["pre"]
    fixed = f"{symbol}{match['int']}.{match['dec']}"
    return f"{head} {fixed}" if head else fixed


def clean_name(text: str) -> str:
    text = re.sub(r"[.\u2026·_]{2,}", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,:;-\u2013\u2014|'\"")


def superfluous_kind(text: str) -> str | None:
    if WEB.search(text):
        return "web"
    if ADDRESS.search(text):
        return "address"
    if PHONE.search(text) and sum(c.isdigit() for c in text) >= 7:
        return "phone"
    if HOURS.search(text) and not _item_match(text):
        return "hours"
    if NOTICE.search(text) and not _item_match(text):
        return "notice"
    return None


def first_of_several_prices(text: str) -> str:
    """'Burger 15 / 18' -> 'Burger 15'. A bare '1/2' stays: a fraction, unless spaced or marked."""
    match = _SEVERAL_PRICES.search(text)
    if not match:
        return text
    spaced = re.search(r"\s[/|]|[/|]\s|\|", match["rest"])
    marked = re.search(r"[$€£.,]", match["first"])
    if not (spaced or marked):
        return text
    return text[: match.start()] + " " + match["first"].strip()


def _is_marked(match: re.Match[str]) -> bool:
    """A currency symbol or decimals: certainly a price."""
    return bool(match["pre"] or match["post"] or match["decimals"])


def _item_match(text: str) -> re.Match[str] | None:
    """`text` as an item line ending in a price, or None."""
    match = PRICE_AT_END.match(text)
    if not match:
        return None
    name = clean_name(match["name"])
    if not name or not any(c.isalpha() for c in name):
        return None
    if _is_marked(match):
        return match
    # A bare whole number: a price only when the line reads like an item and nothing says count.
    amount = int(match["amount"])
    last_word = name.split()[-1].lower()
    before = text[match.start("amount") - 1]
    if not name[:1].isupper() or not 0 < amount < 1000 or last_word in _NOT_PRICE_BEFORE:
        return None
    if name[-1].isdigit() or before in ":/":  # 9:00 - 17:30, 1/2, Wings 12 14
        return None
    return match


def _first_price(name: str, match: re.Match[str]) -> tuple[str, re.Match[str]]:
    """'Margherita 10.00 / 14.00' (one price per size): the name and the first price."""
    rest = name.rstrip(" /|")
    while (earlier := PRICE_AT_END.match(rest)) and _is_marked(earlier) and clean_name(earlier["name"]):
        match, rest = earlier, earlier["name"].rstrip(" /|")
    return rest, match


def _price(match: re.Match[str]) -> tuple[float, str | None]:
    amount = float(match["amount"].replace(",", "."))
    symbol = match["pre"] or match["post"]
    if symbol in CURRENCY_BY_SYMBOL:
        return amount, CURRENCY_BY_SYMBOL[symbol]
    if symbol in CURRENCY_BY_SYMBOL.values():
        return amount, symbol
    return amount, None


def _could_be_heading(text: str) -> bool:
    words = text.split()
    return 0 < len(words) <= 5 and not any(c.isdigit() for c in text) and not text[:1].islower()


def _heading_name(text: str) -> str:
    name = clean_name(text)
    return name.title() if name.isupper() else name


def _is_heading(line: Line, text: str, body_height: float) -> bool:
    if not _could_be_heading(text):
        return False
    if text.endswith(":"):
        return True
    letters = [c for c in text if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) >= 3:
        return True
    return bool(body_height and line.height >= body_height * 1.15)


def _looks_like_description(line: Line, text: str, body_height: float) -> bool:
    if text[:1].islower():
        return True
    return bool(body_height and line.height and line.height <= body_height * 0.9)


def parse_menu(lines: Sequence[Line]) -> dict[str, Any]:
    """The result shape of a menu job: menu.categories[].items[], currency, uncertainItems,
    superfluousText."""
    lines = [line for line in lines if line.text.strip()]
    item_heights = [line.height for line in lines if line.height and _item_match(line.text)]
    body_height = statistics.median(item_heights) if item_heights else 0.0
    categories: list[Category] = []
    superfluous: list[str] = []
    currencies: dict[str, int] = {}
    pending: list[Line] = []  # lines without a price: a name whose price follows, or a heading
    last_item: Item | None = None

    def current() -> Category:
        if not categories:
            categories.append(Category("Menu"))
        return categories[-1]

    def settle(before_item: bool) -> None:
        """Decides what the pending lines were. Right before an item, the last one that looks
        like a heading is that item's heading; before anything was parsed they are the
        restaurant's name or tagline; otherwise they are items without a price."""
        heading = pending.pop() if before_item and pending and _could_be_heading(pending[-1].text) else None
        for p in pending:
            name = clean_name(p.text)
            if not any(c.items for c in categories):
                superfluous.append(p.text.strip())
            elif name:
                current().items.append(Item(name, None, p.confidence * 0.5))
        pending.clear()
        if heading is not None:
            categories.append(Category(_heading_name(heading.text)))

    def add_item(name: str, match: re.Match[str], confidence: float) -> Item:
        price, cur = _price(match)
        if cur:
            currencies[cur] = currencies.get(cur, 0) + 1
        item = Item(clean_name(name), price, confidence)
        current().items.append(item)
        return item

    for line in lines:
        text = first_of_several_prices(fix_ocr_price(line.text.strip()))
        if superfluous_kind(text):
            settle(before_item=False)
            superfluous.append(text)
            last_item = None
            continue
        only = PRICE_ONLY.match(text)
        if only and pending and _is_marked(only):
            name_line = pending.pop()
            settle(before_item=True)
            last_item = add_item(name_line.text, only, min(name_line.confidence, line.confidence))
            continue
        match = _item_match(text)
        if match:
            settle(before_item=True)
            name, match = _first_price(match["name"], match)
            last_item = add_item(name, match, line.confidence)
            continue
        if _is_heading(line, text, body_height):
            settle(before_item=False)
            categories.append(Category(_heading_name(text)))
            last_item = None
            continue
        if last_item is not None and not pending and _looks_like_description(line, text, body_height):
            last_item.description = f"{last_item.description} {text}" if last_item.description else text
            continue
        pending.append(line)
    settle(before_item=False)

    kept = [c for c in categories if c.items]
    # A heading with nothing under it (the restaurant's name in large type) is not a category.
    superfluous[:0] = [c.name for c in categories if not c.items and c.name != "Menu"]
    uncertain = [
        {
            "name": item.name,
            "price": item.price,
            "reason": "no price" if item.price is None else "low OCR confidence",
        }
        for c in kept
        for item in c.items
        if item.price is None or item.confidence < LOW_CONFIDENCE
    ]
    return {
        "menu": {"categories": [{"name": c.name, "items": [i.as_json() for i in c.items]} for c in kept]},
        "currency": max(currencies, key=lambda k: currencies[k]) if currencies else None,
        "uncertainItems": uncertain,
        "superfluousText": superfluous,
    }


def parse_text(text: str) -> dict[str, Any]:
    """parse_menu for plain text, one line per line (no confidences or heights)."""
    return parse_menu([Line(t) for t in text.splitlines()])
