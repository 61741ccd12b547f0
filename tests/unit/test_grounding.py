"""A schema-valid answer that is about something else is invalid: the answers a small model
really gave on the labelled data (prompt examples copied, quantities made up) are caught, and
the ordinary canonicalizations a good model makes pass."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest

from model.grounding import ungrounded_menu_reason, ungrounded_reason
from model.ingredients import IngredientQuery, IngredientResolver
from model.schemas import IngredientItem
from tests.unit.test_chain import FakeServers, completion, local, make


def item(name: str, quantity: float | None = None, unit: str | None = None) -> IngredientItem:
    return IngredientItem(id=0, status="resolved", name=name, quantity=quantity, unit=unit, confidence=0.9)


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("1 bunch fresh thyme", item("thyme", 1, "bunch")),
        ("1/3 cup packed brown sugar", item("brown sugar", 1 / 3, "cup")),
        ("¼ cup dry breadcrumbs", item("bread crumb", 0.25, "cup")),  # a part of a word
        ("1 ½ cups shredded mozzarella", item("mozzarella cheese", 1.5, "cup")),
        ("1½ cups milk", item("milk", 1.5, "cups")),
        ("1 1/2 cups milk", item("milk", 1.5, "cup")),
        ("3 scallions, sliced", item("green onion", 3)),  # the rules' synonym
        ("2 tsp whole cloves", item("clove", 2, "teaspoon")),  # a count unit that is a food
        ("200g plain flour", item("all-purpose flour", 200, "g")),
        ("an onion", item("onion", 1)),
        ("a dozen eggs", item("egg", 12)),
        ("2-3 tomatoes", item("tomato", 2)),
        ("Juice of 1 lemon", item("lemon juice", 1)),
        ("1 Tbsp EVOO", item("olive oil", 1, "tablespoon")),
        ("2 cups tomatoe sauce", item("tomato sauce", 2, "cup")),  # a near spelling
        ("2 large eggs", item("egg", 2, "large")),  # not a kitchen unit: not checked
    ],
)
def test_grounded_answers_pass(line: str, answer: IngredientItem) -> None:
    assert ungrounded_reason(line, None, answer) is None


@pytest.mark.parametrize(
    ("line", "answer", "why"),
    [
        ("1 bunch fresh thyme", item("1 large egg", 1), "is not about"),  # the prompt's example
        ("1/3 cup packed brown sugar", item("1/3 cup melted butter", 0.33, "cup"), "is not about"),
        ("1 (16.5-ounce) jar pasta sauce", item("16.5-ounce", 16.5), "no food word"),
        ("1 tsp salt", item("salt", 2, "teaspoon"), "quantity 2"),
        ("onion", item("onion", 3), "quantity 3"),
        ("1 tsp salt", item("salt", 1, "cup"), "unit 'cup'"),
    ],
)
def test_answers_about_something_else_are_refused(line: str, answer: IngredientItem, why: str) -> None:
    reason = ungrounded_reason(line, None, answer)
    assert reason is not None and why in reason


def test_raw_unit_grounds_the_unit_and_rejections_pass() -> None:
    assert ungrounded_reason("flour", "cup", item("flour", None, "cup")) is None
    rejected = IngredientItem(id=0, status="rejected", confidence=0.9, reason="not food")
    assert ungrounded_reason("paper towels", None, rejected) is None


def test_an_ungrounded_answer_falls_through_to_the_rules() -> None:
    servers = FakeServers()

    def copies_the_example(_: str, body: dict[str, Any]) -> httpx.Response:
        out = {"id": 0, "status": "resolved", "name": "egg", "quantity": 2, "unit": None,
               "confidence": 0.9, "reason": None}  # fmt: skip
        return completion(json.dumps({"items": [out]}))

    servers.chat["local"] = copies_the_example
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
