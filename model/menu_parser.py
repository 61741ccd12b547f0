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

With the layout's geometry (lines from OCR boxes, model/menu_layout.py) the parser also reads
paragraphs: a name line whose price ends a description line below it is one item, a name
broken over two lines ends at the leaders, a line under an item in its paragraph is its
description, and an unpriced orphan line goes to uncertainItems only. Prices are mended and
the currency read once per menu first (model/menu_prices.py); add-ons are never items, size
labels ("klein groß", "6oz 12oz") are superfluous, and allergen codes ("A,C,G") leave names.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from model.menu_layout import is_price_or_size
from model.menu_prices import (
    CURRENCY_BY_SYMBOL,
    PRICE_AT_END,
    PRICE_ONLY,
    first_of_several_prices,
    first_price,
    fix_ocr_price,
    is_marked,
    mend_prices,
    menu_currency,
    price_of,
    split_addon,
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
# Allergen or additive codes after a name: "A,C,G", "(1,3,7)", glued "SalatA.c,G". Commas are
# required: "B.L.T." is a name.
_ALLERGEN_CODES = re.compile(
    r"(?:\s+|(?<=[a-zß]))\(?(?:[A-Za-z]|\d{1,2})(?:\s?[.,]\s?(?:[A-Za-z]|\d{1,2}))+\)?$"
)
# "3.50 6.75 12.25": one price per size, not a phone number.
_SIZE_PRICES = re.compile(r"\.?\d{1,3}[.,]\d{2}(\s+\d{1,3}[.,]\d{2})+")
# Blank space above a line, in text heights, that starts a new paragraph.
PARAGRAPH_GAP = 0.5


@dataclass(frozen=True)
class Line:
    """One line of menu text; height 0 and gap_before None when unknown (plain text input).

    block: the layout block (column) the line is in; gap_before: blank space above it within
    the block, in text heights (a new block or a wide gap starts a new paragraph)."""

    text: str
    confidence: float = 1.0
    height: float = 0.0
    block: int = 0
    gap_before: float | None = None


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


def clean_name(text: str) -> str:
    text = re.sub(r"[.\u2026·_]{2,}", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    codes = _ALLERGEN_CODES.search(text)
    if codes and "," in codes.group() and codes.start() > 0:
        text = text[: codes.start()]
    return text.strip(" .,:;-\u2013\u2014|'\"")


def superfluous_kind(text: str) -> str | None:
    if WEB.search(text):
        return "web"
    if ADDRESS.search(text):
        return "address"
    phone = PHONE.search(text)
    if phone and sum(c.isdigit() for c in text) >= 7 and not _SIZE_PRICES.fullmatch(phone.group().strip()):
        return "phone"
    if HOURS.search(text) and not _item_match(text):
        return "hours"
    if NOTICE.search(text) and not _item_match(text):
        return "notice"
    return None


def _item_match(text: str) -> re.Match[str] | None:
    """`text` as an item line ending in a price, or None."""
    match = PRICE_AT_END.match(text)
    if not match:
        return None
    name = clean_name(match["name"])
    if sum(c.isalpha() for c in name) < 2:  # a name has two letters; "U €5.95" is OCR debris
        return None
    if is_marked(match):
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


def parse_menu(lines: Sequence[Line], currency_symbol: str | None = None) -> dict[str, Any]:
    """The result shape of a menu job: menu.categories[].items[], currency, uncertainItems,
    superfluousText. `currency_symbol`: the symbol the OCR saw beside the prices when its text
    has none."""
    return _MenuReader([line for line in lines if line.text.strip()], currency_symbol).read()


class _MenuReader:
    """One pass over the lines. With the layout's geometry (gap_before set), lines group into
    paragraphs: a name line whose price ends a description line below it ("Vive la Poutine!" /
    "Fresh fries | cheese curds $6.50") is one item, and so is a name broken over two lines
    whose second line has the leaders and the price."""

    def __init__(self, lines: list[Line], currency_symbol: str | None) -> None:
        self.currency = menu_currency(line.text for line in lines) or CURRENCY_BY_SYMBOL.get(
            currency_symbol or ""
        )
        self.lines = lines
        self.geometry = any(line.gap_before is not None for line in lines)
        item_heights = [
            line.height
            for line in lines
            if line.height and _item_match(mend_prices(line.text, self.currency))
        ]
        self.body_height = statistics.median(item_heights) if item_heights else 0.0
        self.categories: list[Category] = []
        self.superfluous: list[str] = []
        self.unpriced: list[Item] = []  # with geometry: lines that are neither item nor text
        self.pending: list[tuple[Line, int]] = []  # (line, paragraph): a name, or a heading
        self.last_item: tuple[Item, int] | None = None
        self.last_description: tuple[Item, Line, str] | None = None  # the line just before
        self.paragraph = 0

    def current(self) -> Category:
        if not self.categories:
            self.categories.append(Category("Menu"))
        return self.categories[-1]

    def settle(self, before_item: bool) -> None:
        """Decides what the pending lines were. Right before an item, the last one that looks
        like a heading is that item's heading; before anything was parsed they are the
        restaurant's name or tagline; otherwise they are items without a price."""
        pending = [line for line, _ in self.pending]
        heading = pending.pop() if before_item and pending and _could_be_heading(pending[-1].text) else None
        for p in pending:
            name = clean_name(p.text)
            if not any(c.items for c in self.categories):
                self.superfluous.append(p.text.strip())
            elif name and self.geometry:
                self.unpriced.append(Item(name, None, p.confidence * 0.5))
            elif name:
                self.current().items.append(Item(name, None, p.confidence * 0.5))
        self.pending.clear()
        if heading is not None:
            self.categories.append(Category(_heading_name(heading.text)))

    def add_item(self, name: str, match: re.Match[str], confidence: float) -> Item:
        price, _ = price_of(match)
        item = Item(clean_name(name), price, confidence)
        self.current().items.append(item)
        self.last_item = (item, self.paragraph)
        return item

    def describe(self, item: Item, text: str) -> None:
        item.description = f"{item.description} {text}" if item.description else text

    def name_lines(
        self, text: str, name: str, previous: tuple[Item, Line, str] | None
    ) -> tuple[str, str | None]:
        """With geometry: the item's name and description when the lines above the price line
        in its paragraph are part of the item."""
        if not self.geometry:
            return name, None
        above = [p for p, para in self.pending if para == self.paragraph]
        above = [p for p in above if not _is_heading(p, p.text, self.body_height)]
        leaders = bool(re.search(r"[.\u2026·]{3,}", text))
        if not above:
            if leaders and previous is not None and self._could_continue_name(previous[1]):
                item, _, prev_text = previous
                item.description = (item.description or "").removesuffix(prev_text).strip() or None
                return f"{clean_name(prev_text)} {name}", None
            return name, None
        keep = [(p, para) for p, para in self.pending if p not in above]
        self.pending[:] = keep
        if leaders:  # a name broken over lines: the leaders end it
            return " ".join([*(clean_name(p.text) for p in above), name]), None
        rest = " ".join([*(p.text.strip() for p in above[1:]), name]).strip()
        return clean_name(above[0].text), rest or None

    def _could_continue_name(self, line: Line) -> bool:
        text = line.text.strip()
        tall_enough = not (self.body_height and line.height and line.height < 0.9 * self.body_height)
        return tall_enough and text[:1].isupper() and not text.endswith((",", ")"))

    def read(self) -> dict[str, Any]:
        previous_block: int | None = None
        for line in self.lines:
            new_paragraph = line.gap_before is not None and (
                line.block != previous_block or line.gap_before >= PARAGRAPH_GAP
            )
            previous_block = line.block
            if new_paragraph:
                self.paragraph += 1
                if self.pending and all(para < self.paragraph for _, para in self.pending):
                    self.settle(before_item=True)
            self.read_line(line)
        self.settle(before_item=False)
        return self.result()

    def read_line(self, line: Line) -> None:
        previous, self.last_description = self.last_description, None
        text, addon = split_addon(fix_ocr_price(mend_prices(line.text.strip(), self.currency)))
        text = first_of_several_prices(text)
        if not text:  # all add-on: part of the item above
            if self.last_item is not None and addon:
                self.describe(self.last_item[0], addon)
            elif addon:
                self.superfluous.append(addon)
            return
        if superfluous_kind(text) or (
            self.geometry and is_price_or_size(text) and not PRICE_ONLY.match(text)
        ):
            self.settle(before_item=False)
            self.superfluous.append(text)
            self.last_item = None
            return
        only = PRICE_ONLY.match(text)
        if only and self.pending and is_marked(only) and self.geometry:
            name, extra = self.name_lines(text, "", previous)
            if name.strip():
                self.settle(before_item=True)
                item = self.add_item(name, only, line.confidence)
                if extra:
                    self.describe(item, extra)
                return
        if only and self.pending and is_marked(only):
            name_line, _ = self.pending.pop()
            self.settle(before_item=True)
            self.add_item(name_line.text, only, min(name_line.confidence, line.confidence))
            return
        match = _item_match(text)
        if match:
            name, match = first_price(match["name"], match)
            name, extra = self.name_lines(text, name, previous)
            self.settle(before_item=True)
            item = self.add_item(name, match, line.confidence)
            if extra:
                self.describe(item, extra)
            if addon:
                self.describe(item, addon)
            return
        if sum(c.isalpha() for c in text) < 2:  # OCR debris: "60%120%", "| |"
            self.superfluous.append(text)
            return
        if _is_heading(line, text, self.body_height):
            self.settle(before_item=False)
            self.categories.append(Category(_heading_name(text)))
            self.last_item = None
            return
        if self.last_item is not None and not self.pending and self._describes(line, text):
            self.describe(self.last_item[0], text)
            self.last_description = (self.last_item[0], line, text)
            return
        self.pending.append((line, self.paragraph))

    def _describes(self, line: Line, text: str) -> bool:
        """Is this line the description of the item above it?"""
        assert self.last_item is not None
        if self.geometry:
            return self.last_item[1] == self.paragraph
        return _looks_like_description(line, text, self.body_height)

    def result(self) -> dict[str, Any]:
        kept = [c for c in self.categories if c.items]
        # A heading with nothing under it (the restaurant's name in large type) is not a category.
        self.superfluous[:0] = [c.name for c in self.categories if not c.items and c.name != "Menu"]
        uncertain = [
            {
                "name": item.name,
                "price": item.price,
                "reason": "no price" if item.price is None else "low OCR confidence",
            }
            for item in [*(i for c in kept for i in c.items), *self.unpriced]
            if item.price is None or item.confidence < LOW_CONFIDENCE
        ]
        return {
            "menu": {"categories": [{"name": c.name, "items": [i.as_json() for i in c.items]} for c in kept]},
            "currency": self.currency,
            "uncertainItems": uncertain,
            "superfluousText": self.superfluous,
        }


def parse_text(text: str) -> dict[str, Any]:
    """parse_menu for plain text, one line per line (no confidences or heights)."""
    return parse_menu([Line(t) for t in text.splitlines()])
