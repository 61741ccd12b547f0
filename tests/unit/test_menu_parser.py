"""The deterministic menu parser on plain text."""

from __future__ import annotations

import pytest

from model.menu import validate_menu
from model.menu_parser import Line, fix_ocr_price, parse_menu, parse_text


def items(result: dict) -> list[tuple[str, str, float | None]]:
    return [(c["name"], i["name"], i["price"]) for c in result["menu"]["categories"] for i in c["items"]]


def test_categories_items_prices_and_leaders() -> None:
    result = parse_text(
        """The Copper Pot
        STARTERS
        Tomato Soup ........ $6.50
        Garlic Bread ... $4.00
        served warm with butter
        Mains
        Grilled Salmon $18.95
        Steak Frites ............................ $24.00
        """
    )
    assert items(result) == [
        ("Starters", "Tomato Soup", 6.5),
        ("Starters", "Garlic Bread", 4.0),
        ("Mains", "Grilled Salmon", 18.95),
        ("Mains", "Steak Frites", 24.0),
    ]
    garlic = result["menu"]["categories"][0]["items"][1]
    assert garlic["description"] == "served warm with butter"
    assert result["currency"] == "USD"
    assert "The Copper Pot" in result["superfluousText"]
    validate_menu(result)  # the result shape of a job


@pytest.mark.parametrize(
    ("line", "price", "currency"),
    [
        ("Crepes ....... €7.50", 7.5, "EUR"),
        ("Crepes 7,50 €", 7.5, "EUR"),
        ("Crepes 7.50€", 7.5, "EUR"),
        ("Fish and Chips £12.00", 12.0, "GBP"),
        ("Fish and Chips .... 12.00 GBP", 12.0, "GBP"),
        ("Burger $1,250.00", None, None),  # not a menu price format we read: no item price
    ],
)
def test_currencies(line: str, price: float | None, currency: str | None) -> None:
    result = parse_text(f"Food\n{line}")
    found = items(result)
    if price is None:
        assert all(p != 1250.0 for _, _, p in found)
        return
    assert found[0][1:] == (found[0][1], price)
    assert found[0][1].startswith(("Crepes", "Fish and Chips"))
    assert result["currency"] == currency


def test_superfluous_lines() -> None:
    result = parse_text(
        """Desserts
        Apple Pie $5.00
        123 Main Street
        Tel: (555) 123-4567
        Open daily 11am - 10pm
        Mon - Fri 9:00 - 17:00
        www.copperpot.example.com
        """
    )
    assert items(result) == [("Desserts", "Apple Pie", 5.0)]
    assert result["superfluousText"] == [
        "123 Main Street",
        "Tel: (555) 123-4567",
        "Open daily 11am - 10pm",
        "Mon - Fri 9:00 - 17:00",
        "www.copperpot.example.com",
    ]


def test_price_on_its_own_line_belongs_to_the_name_before() -> None:
    result = parse_text("Pizza\nMargherita\n$11.00\nDiavola\n$13.50")
    assert items(result) == [("Pizza", "Margherita", 11.0), ("Pizza", "Diavola", 13.5)]


def test_description_mentioning_hours_is_not_superfluous() -> None:
    result = parse_text("Mains\nPork Belly $21.00\nslow cooked for six hours")
    assert result["menu"]["categories"][0]["items"][0]["description"] == "slow cooked for six hours"
    assert result["superfluousText"] == []


def test_item_without_price_is_uncertain() -> None:
    result = parse_text("Drinks\nLemonade $3.00\nSeasonal special of the day\nDESSERTS\nPie $4.00")
    assert items(result) == [
        ("Drinks", "Lemonade", 3.0),
        ("Drinks", "Seasonal special of the day", None),
        ("Desserts", "Pie", 4.0),
    ]
    assert {"name": "Seasonal special of the day", "price": None, "reason": "no price"} in result[
        "uncertainItems"
    ]


def test_low_confidence_items_are_uncertain_and_headings_by_height() -> None:
    lines = [
        Line("Burgers", 0.95, 40),
        Line("Classic Burger $9.00", 0.9, 26),
        Line("Blurry Burgr $8.00", 0.4, 26),
    ]
    result = parse_menu(lines)
    assert items(result) == [("Burgers", "Classic Burger", 9.0), ("Burgers", "Blurry Burgr", 8.0)]
    assert [u["name"] for u in result["uncertainItems"]] == ["Blurry Burgr"]
    assert result["menu"]["categories"][0]["items"][1]["confidence"] == 0.4


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("Soup £8:25", "Soup £8.25"),
        ("Soup £1275)", "Soup £12.75"),
        ("Soup $4°95", "Soup $4.95"),
        ("Soup 12", "Soup 12"),
    ],
)
def test_ocr_price_repairs(raw: str, fixed: str) -> None:
    assert fix_ocr_price(raw) == fixed


def test_empty_and_garbage_input() -> None:
    assert items(parse_text("")) == []
    result = parse_text("\n\n;;;\n....\n")
    assert items(result) == []
    validate_menu(result)


def test_whole_number_and_one_decimal_prices() -> None:
    result = parse_text(
        "Starters\nSoup of the Day 6\nBruschetta — 8.5\nRibeye Steak 12oz $38\nTiramisu ..... 9\n"
        "Margherita 10.00 / 14.00\nMixed Platter for 2\nChicken Wings x 6\n"
    )
    assert items(result) == [
        ("Starters", "Soup of the Day", 6.0),
        ("Starters", "Bruschetta", 8.5),
        ("Starters", "Ribeye Steak 12oz", 38.0),
        ("Starters", "Tiramisu", 9.0),
        ("Starters", "Margherita", 10.0),  # one price per size: the first
        ("Starters", "Mixed Platter for 2", None),  # a count, not a price
        ("Starters", "Chicken Wings x 6", None),
    ]
    assert result["currency"] == "USD"


def test_numbers_that_are_not_prices() -> None:
    result = parse_text("Mains\nPie $4.00\nserves 2\nMon - Fri 9:00 - 17:30\nSince 1987\nHalf 1/2")
    assert items(result)[0] == ("Mains", "Pie", 4.0)
    assert all(price is None for _, _, price in items(result)[1:])
    assert "Mon - Fri 9:00 - 17:30" in result["superfluousText"]


def test_social_handles_and_notices_are_superfluous() -> None:
    result = parse_text(
        "Drinks\nCoke $2.50\nFollow us on Instagram @cornerbistro\n"
        "Please inform your server of any allergies\nA 12.5% service charge is added to tables of 6+\n"
    )
    assert items(result) == [("Drinks", "Coke", 2.5)]
    assert result["superfluousText"] == [
        "Follow us on Instagram @cornerbistro",
        "Please inform your server of any allergies",
        "A 12.5% service charge is added to tables of 6+",
    ]


@pytest.mark.parametrize(
    ("line", "name", "price"),
    [
        ("Burger 15 / 18", "Burger", 15.0),
        ("Pizza 12 | 16", "Pizza", 12.0),
        ("Pad Thai 14 / 18 / 22", "Pad Thai", 14.0),
        ("Coffee 3.5/4.5", "Coffee", 3.5),
        ("Lemonade $3 / $5", "Lemonade", 3.0),
        ("Half Chicken 1/2 $12", "Half Chicken 1/2", 12.0),
    ],
)
def test_one_price_per_size_gives_the_first(line: str, name: str, price: float) -> None:
    items = [i for c in parse_text(f"MAINS\nSalad 5\n{line}")["menu"]["categories"] for i in c["items"]]
    assert (items[-1]["name"], items[-1]["price"]) == (name, price)


def test_a_fraction_at_the_end_is_not_two_prices() -> None:
    items = [i for c in parse_text("MAINS\nSalad 5\nChicken 1/2")["menu"]["categories"] for i in c["items"]]
    assert items[-1]["price"] is None
