"""A schema-valid answer that is about something else is invalid: the answers a small model
really gave on the labelled data (prompt examples copied) are caught, and the ordinary
canonicalizations a good model makes pass."""

from __future__ import annotations

import json
from typing import Any

import pytest

from model.grounding import ungrounded_menu_reason, ungrounded_name_reason
from model.ingredients import IngredientQuery, IngredientResolver
from model.rules import resolve_with_rules
from tests.unit.test_chain import FakeServers, completion, local, make


def ungrounded(line: str, name: str) -> str | None:
    return ungrounded_name_reason(line, name, resolve_with_rules(line))


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("1 bunch fresh thyme", "thyme"),
        ("1/3 cup packed brown sugar", "brown sugar"),
        ("¼ cup dry breadcrumbs", "bread crumb"),  # a part of a word
        ("1 ½ cups shredded mozzarella", "mozzarella cheese"),
        ("3 scallions, sliced", "green onion"),  # the rules' synonym
        ("2 tsp whole cloves", "clove"),  # a count unit that is a food
        ("200g plain flour", "all-purpose flour"),
        ("Juice of 1 lemon", "lemon juice"),
        ("1 Tbsp EVOO", "olive oil"),
        ("2 cups tomatoe sauce", "tomato sauce"),  # a near spelling
        ("500g pork mince", "ground pork"),
    ],
)
def test_grounded_names_pass(line: str, name: str) -> None:
    assert ungrounded(line, name) is None


@pytest.mark.parametrize(
    ("line", "name", "why"),
    [
        ("1 bunch fresh thyme", "egg", "is not about"),  # the prompt's example
        ("1/3 cup packed brown sugar", "melted butter", "is not about"),
        ("1 (16.5-ounce) jar pasta sauce", "16.5-ounce", "no food word"),
        ("2 Kartoffeln", "potato", "is not about"),  # a translation the rules do not know
    ],
)
def test_names_about_something_else_are_refused(line: str, name: str, why: str) -> None:
    reason = ungrounded(line, name)
    assert reason is not None and why in reason


def test_an_ungrounded_answer_falls_through_to_the_rules() -> None:
    servers = FakeServers()
    servers.chat["local"] = lambda h, body: completion(json.dumps({"names": ["egg"]}))  # copies the example
    (answer,) = IngredientResolver(make(servers, [local()])).resolve(
        [IngredientQuery.of("1 bunch fresh thyme")]
    )
    assert (answer.provider, answer.canonical_name, answer.quantity) == ("rules", "thyme", 1.0)
    assert servers.calls("local") == 2  # asked, retried once, then the next provider


OCR_TEXT = """THE CORNER BISTRO
STARTERS
Margherlta Pizza ........ $12.50
Garlic Bread 6
Calamari Fritti £1275"""


def menu(*items: tuple[str, float | None]) -> dict[str, Any]:
    return {"menu": {"categories": [{"name": "Starters", "items": [
        {"name": n, "price": p, "confidence": 0.9} for n, p in items]}]}}  # fmt: skip


def test_a_menu_read_from_the_text_is_grounded() -> None:
    # OCR mended ("Margherlta") and a price whose point OCR lost ("1275") are readings, not inventions.
    answer = menu(("Margherita Pizza", 12.5), ("Garlic Bread", 6), ("Calamari Fritti", 12.75))
    assert ungrounded_menu_reason(answer, OCR_TEXT) is None


@pytest.mark.parametrize(
    ("items", "why"),
    [
        ((("Margherita Pizza", 12.5), ("Tiramisu", 8.0)), "item 'Tiramisu'"),
        ((("Garlic Bread", 7.0),), "price 7"),
        ((("Lobster Garlic Bisque Deluxe", None),), "not in the OCR text"),
    ],
)
def test_an_invented_item_or_price_is_refused(items: tuple[tuple[str, float | None], ...], why: str) -> None:
    reason = ungrounded_menu_reason(menu(*items), OCR_TEXT)
    assert reason is not None and why in reason


def test_an_invented_menu_falls_back_to_the_parser() -> None:
    from model.menu import MenuStructurer  # noqa: PLC0415
    from model.ocr import OcrLine, OcrResult  # noqa: PLC0415

    servers = FakeServers()
    invented = {**menu(("Tiramisu", 8.0)), "currency": "USD", "uncertainItems": [], "superfluousText": []}
    servers.chat["local"] = lambda h, b: completion(json.dumps(invented))
    ocr = OcrResult([OcrLine(line, 0.95, 20.0, 0, ()) for line in OCR_TEXT.splitlines()], 800, 600)
    out = MenuStructurer(make(servers, [local()])).structure(ocr)
    assert out.provider == "rules" and servers.calls("local") == 2
    names = [i["name"] for c in out.result["menu"]["categories"] for i in c["items"]]
    assert "Tiramisu" not in names and "Garlic Bread" in names
