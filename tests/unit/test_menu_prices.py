"""Prices as menus print them and OCR reads them; the currency per menu; add-ons."""

from __future__ import annotations

import pytest

from model.menu_parser import parse_text
from model.menu_prices import mend_prices, menu_currency, split_addon


def items(text: str) -> list[tuple[str, float | None]]:
    result = parse_text(text)
    return [(i["name"], i["price"]) for c in result["menu"]["categories"] for i in c["items"]]


@pytest.mark.parametrize(
    ("line", "name", "price"),
    [
        ("Egg Sandwich $4.5", "Egg Sandwich", 4.5),
        ("Egg Sandwich 4.50", "Egg Sandwich", 4.5),
        ("Schnitzel 9,90", "Schnitzel", 9.9),
        ("Adana Kebap 20,00 TL", "Adana Kebap", 20.0),
        ("Crepe €12", "Crepe", 12.0),
        ("Crepe 12 €", "Crepe", 12.0),
        ("Burger | 8", "Burger", 8.0),
        ("Burger 8", "Burger", 8.0),
        ("Iced Tea $.50", "Iced Tea", 0.5),
        ("Espresso .50", "Espresso", 0.5),
        ("Çay ₺45", "Çay", 45.0),
    ],
)
def test_price_forms(line: str, name: str, price: float) -> None:
    assert items(f"MAINS\n{line}") == [(name, price)]


@pytest.mark.parametrize(
    ("lines", "currency"),
    [
        (["Soup $4", "Salad 5.50"], "USD"),  # one $ makes the whole menu dollars
        (["Suppe 3,20", "Strudel (+1€ for sauce)"], "EUR"),
        (["Kebap 20,00 TL", "Ayran 5,00 TL"], "TRY"),
        (["Pie £4.00"], "GBP"),
        (["Suppe 3,20", "Gulasch 9,90"], None),  # nothing says which: not guessed
        (["the EGG SANDWICH S4", "the CUBAN S9.5"], "USD"),  # every $ read as S
    ],
)
def test_currency_is_read_once_per_menu(lines: list[str], currency: str | None) -> None:
    assert menu_currency(lines) == currency
    assert parse_text("MAINS\n" + "\n".join(lines))["currency"] == currency


@pytest.mark.parametrize(
    ("raw", "mended"),
    [
        ("the EGG SANDWICH S4", "the EGG SANDWICH $4"),
        ("the HANGOVERS8.5", "the HANGOVER $8.5"),
        ("the CLASSIC B.L.T.S8.5", "the CLASSIC B.L.T. $8.5"),
        ("Add Olives $0. 50", "Add Olives $0.50"),
        ("Fries $ 3.50", "Fries $3.50"),
        ("Ciabatta +$.50", "Ciabatta +$0.50"),
    ],
)
def test_ocr_dollar_misreadings_on_a_dollar_menu(raw: str, mended: str) -> None:
    assert mend_prices(raw, "USD") == mended


def test_s_is_a_letter_on_a_menu_without_dollars() -> None:
    assert mend_prices("Pizza S4", "EUR") == "Pizza S4"
    assert mend_prices("Pizza S4", None) == "Pizza S4"


@pytest.mark.parametrize(
    ("raw", "mended"),
    [
        ("Pfannkuchen mit Gyros 7,409,40", "Pfannkuchen mit Gyros 7,40 9,40"),
        ("Radeberger Pilsner .3.506.7512.25", "Radeberger Pilsner 3.50 6.75 12.25"),
        ("Dornfelder ........ .2.75", "Dornfelder ........ 2.75"),
        ("Espresso .50", "Espresso 0.50"),
        ("Schinken Nudel 3.25器", "Schinken Nudel 3.25"),
    ],
)
def test_size_prices_read_as_one_word_and_icons(raw: str, mended: str) -> None:
    assert mend_prices(raw, None) == mended


def test_size_table_gives_the_first_column() -> None:
    assert items("Pfannkuchen\nPfannkuchen mit Gyros 7,409,40\nPfannkuchen mit Speck 6,90 8,80") == [
        ("Pfannkuchen mit Gyros", 7.4),
        ("Pfannkuchen mit Speck", 6.9),
    ]
    assert items("BEER\nRadeberger Pilsner....3.50 6.75 12.25") == [("Radeberger Pilsner", 3.5)]


@pytest.mark.parametrize(
    ("line", "kept", "addon"),
    [
        ("Freshly made salsa $11.50 (+ $2 for chicken)", "Freshly made salsa $11.50", "(+ $2 for chicken)"),
        (
            "tomato, pickled red onion add salmon bacon +$6",
            "",
            "tomato, pickled red onion add salmon bacon +$6",
        ),
        ("Served on sourdough or ciabatta for +$.50", "", "Served on sourdough or ciabatta for +$.50"),
        ("MAKE ANY SANDWICH A MEAL +$2.5", "", "MAKE ANY SANDWICH A MEAL +$2.5"),
        ("Add Cheese: $2.00", "", "Add Cheese: $2.00"),
        ("Apfelstrudel 4,20 (+1€ for Vanilla Sauce)", "Apfelstrudel 4,20", "(+1€ for Vanilla Sauce)"),
        ("Burger $8.00", "Burger $8.00", None),
    ],
)
def test_addons(line: str, kept: str, addon: str | None) -> None:
    assert split_addon(line) == (kept, addon)


def test_addons_are_not_items() -> None:
    found = items(
        "BREAKFAST\nthe WAKER UPPER $4.5\ntomato, pickled red onion add salmon bacon +$6\n"
        "Nachos $11.50 (+ $2 for chicken)\nMAKE ANY SANDWICH A MEAL +$2.5\nAdd Bacon $1.50"
    )
    assert found == [("the WAKER UPPER", 4.5), ("Nachos", 11.5)]
