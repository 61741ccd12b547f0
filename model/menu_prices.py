"""Prices as menus print them and OCR reads them, before the parser looks for items.

- The currency is read once per menu, from the symbols and words written beside its numbers
  ($, €, EUR, £, TL, ₺, CHF, ...), never guessed line by line; a menu without any has none.
- OCR's versions of a price are mended: "$ 3.50" and "$0. 50" → "$3.50", "$0.50"; "$.50" →
  "$0.50"; on a dollar menu an "S" before a number is the dollar sign ("the CUBAN S9.5",
  "HANGOVERS8.5" → "HANGOVER $8.5"); prices of a size table read as one word are split again
  ("7,409,40" → "7,40 9,40"); a stray glyph of another script glued to a price (an icon read as
  a Chinese character) is dropped.
- Add-ons are not items: "(+ $2 for chicken)" is cut from its line, and a line whose price is
  a surcharge ("add salmon bacon +$6", "Served on sourdough for +$.50", "Add Cheese: $2.00")
  is an add-on as a whole.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_NUM = r"\d{0,4}[.,]?\d{1,2}"
# Currency marks and the ISO code each means; words only when they stand beside a number.
_MARKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\${_NUM}|{_NUM}\s?\$"), "USD"),
    (re.compile(rf"€\s?{_NUM}|{_NUM}\s?(€|EUR\b|Euro\b)"), "EUR"),
    (re.compile(rf"£\s?{_NUM}|{_NUM}\s?(£|GBP\b)"), "GBP"),
    (re.compile(rf"₺\s?{_NUM}|{_NUM}\s?(₺|TL\b|TRY\b)"), "TRY"),
    (re.compile(rf"\bCHF\s?{_NUM}|{_NUM}\s?(CHF|Fr\.)"), "CHF"),
    (re.compile(rf"¥\s?{_NUM}|{_NUM}\s?(円|¥)"), "JPY"),
    (re.compile(rf"₹\s?{_NUM}|\bRs\.?\s?{_NUM}"), "INR"),
    (re.compile(rf"{_NUM}\s?(zł|PLN\b)"), "PLN"),
]
_S_PRICE_AT_END = re.compile(r"(?:^|(?<=[\sA-Za-z.]))S\s?\d{1,3}(?:[.,]\d{1,2})?\s*$")
_FOREIGN_GLYPH = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_GLUED_PRICES = re.compile(r"(?:\d{1,3}[.,]\d{2}){2,}")
_ONE = re.compile(r"\d{1,3}[.,]\d{2}")
_SURCHARGE = re.compile(r"\+\s?[$€£₺S]?\s?\d*[.,]?\d+")
_PAREN_ADDON = re.compile(r"\(\s*\+[^)]*\)?")
# "Add Cheese: $2.00", "AddBacon $1.50", "Extra toppings", "+ Pommes 2,50".
_ADDON_START = re.compile(
    r"^\s*(\+|(?i:add|extra|plus|supplement|suppl\.|zzgl\.|zusatz|aggiungi|ajout)(?=[\s:A-Z]))"
)
_PRICE_IN = re.compile(r"[$€£₺]\s?\d|\d[.,]\d{2}\b|\d\s?[€$£₺]")


CURRENCY_BY_SYMBOL = {"$": "USD", "€": "EUR", "£": "GBP", "₺": "TRY", "TL": "TRY", "¥": "JPY"}
_PRICE = (
    r"(?P<pre>[$€£₺])?\s?(?P<amount>\d{1,4}(?P<decimals>[.,]\d{1,2})?)(?![\d.,]?\d)\s?"
    r"(?P<post>[$€£₺]|EUR|USD|GBP|TL|TRY|CHF)?"
)
PRICE_AT_END = re.compile(rf"^(?P<name>.*?)[\s.\u2026·_\-\u2013\u2014:]*{_PRICE}\s*$")
PRICE_ONLY = re.compile(rf"^\s*{_PRICE}\s*$")
_ONE_PRICE = r"[$€£₺]?\s?\d{1,4}(?:[.,]\d{1,2})?\s?(?:[$€£₺]|EUR|USD|GBP|TL|TRY|CHF)?"
# "Burger 15 / 18", "Pizza 12 | 16", "Coffee 3.50/4.50": one price per size at the end.
_SEVERAL_PRICES = re.compile(
    rf"(?<=[^\d\s/|])\s+(?P<first>{_ONE_PRICE})(?P<rest>(?:\s*[/|]\s*(?:\(\w+\)\s*)?{_ONE_PRICE})+)\s*$"
)


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


def is_marked(match: re.Match[str]) -> bool:
    """A currency symbol or decimals: certainly a price."""
    return bool(match["pre"] or match["post"] or match["decimals"])


def _has_name(text: str) -> bool:
    return bool(re.sub(r"[.\u2026·_]{2,}", " ", text).strip(" .,:;-\u2013\u2014|'\"\t"))


def first_price(name: str, match: re.Match[str]) -> tuple[str, re.Match[str]]:
    """'Margherita 10.00 / 14.00' (one price per size): the name and the first price."""
    rest = name.rstrip(" /|")
    while (earlier := PRICE_AT_END.match(rest)) and is_marked(earlier) and _has_name(earlier["name"]):
        match, rest = earlier, earlier["name"].rstrip(" /|")
    return rest, match


def price_of(match: re.Match[str]) -> tuple[float, str | None]:
    amount = float(match["amount"].replace(",", "."))
    symbol = match["pre"] or match["post"]
    if symbol in CURRENCY_BY_SYMBOL:
        return amount, CURRENCY_BY_SYMBOL[symbol]
    if symbol in CURRENCY_BY_SYMBOL.values():
        return amount, symbol
    return amount, None


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


def menu_currency(texts: Iterable[str]) -> str | None:
    """The ISO code of the currency the menu writes most often beside its numbers, or None.
    A menu with no mark at all but several lines ending in "S4", "S9.5" has had its dollar
    signs read as S."""
    counts: Counter[str] = Counter()
    s_prices = 0
    for text in texts:
        for pattern, code in _MARKS:
            counts[code] += len(pattern.findall(text))
        s_prices += bool(_S_PRICE_AT_END.search(text))
    best = counts.most_common(1)
    if best and best[0][1] > 0:
        return best[0][0]
    return "USD" if s_prices >= 2 else None


def _split_glued(match: re.Match[str]) -> str:
    return " ".join(_ONE.findall(match.group()))


def mend_prices(text: str, currency: str | None) -> str:
    """The line with OCR's misreadings of prices mended (see the module's docstring)."""
    letters = sum(c.isalpha() and c.isascii() for c in text)
    if letters and letters >= len(_FOREIGN_GLYPH.findall(text)) * 3:
        text = _FOREIGN_GLYPH.sub("", text)
    text = re.sub(r"([$€£₺])\s+(?=\d)", r"\1", text)
    text = re.sub(r"([$€£₺]\d{1,3})[.,]\s(\d{2})\b", r"\1.\2", text)
    text = re.sub(r"(?<![\d])([$€£₺])([.,]\d{2})\b", r"\g<1>0\2", text)
    if currency == "USD":
        # "S" for "$": glued to the end of a name, or alone before the number.
        text = re.sub(r"(?<=[A-Za-z.])S\s?(?=\d{1,3}(?:[.,]\d{1,2})?\s*$)", " $", text)
        text = re.sub(r"(?<![A-Za-z0-9])S\s?(?=\d{1,3}(?:[.,]\d{1,2})?(?![\d]))", "$", text)
    text = _GLUED_PRICES.sub(_split_glued, text)
    # A leader's last dots glued to a price: ".2.75" is 2.75; ".50" alone is 0.50.
    text = re.sub(r"(^|\s)\.+(?=\d{1,3}[.,]\d{2}\b)", r"\1", text)
    return re.sub(r"(^|\s)\.(\d{2})\b(?![.,]\d)", r"\g<1>0.\2", text)


def split_addon(text: str) -> tuple[str, str | None]:
    """(the line without its add-ons, the add-on text or None). A line that is all add-on
    gives ("", the line)."""
    addon: list[str] = []
    for found in _PAREN_ADDON.findall(text):
        addon.append(found)
    text = _PAREN_ADDON.sub(" ", text).strip()
    surcharge = _SURCHARGE.search(text)
    if surcharge is not None:
        before = text[: surcharge.start()]
        prices = list(_PRICE_IN.finditer(before))
        if not prices:
            return "", " ".join([text, *addon]).strip()
        end = prices[-1].end()
        # The item's price is the last one before the surcharge: keep through its number.
        while end < len(before) and (before[end].isdigit() or before[end] in ".,€"):
            end += 1
        addon.insert(0, text[end:].strip())
        text = before[:end].strip()
    elif _ADDON_START.match(text):
        return "", " ".join([text, *addon]).strip()
    return text, (" ".join(addon).strip() or None)
