"""The rules provider: quantities, units, names, junk and non-food, and the resolver on rules alone."""

from __future__ import annotations

import random

import pytest

from core.settings import Settings
from model.ingredients import IngredientQuery, IngredientResolver, normalize_name
from model.quantities import canonical_unit, number, parse_amount
from model.rules import resolve_with_rules


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("1.5", 1.5), ("1,5", 1.5), ("1/2", 0.5), ("1 1/2", 1.5), ("½", 0.5), ("1½", 1.5),
     ("⅓", 1 / 3), ("x", None), ("1/0", None)],
)  # fmt: skip
def test_numbers(text: str, value: float | None) -> None:
    got = number(text)
    assert got == pytest.approx(value) if value is not None else got is None


@pytest.mark.parametrize(
    ("line", "quantity", "unit", "rest"),
    [
        ("1½ cups flour", 1.5, "cup", "flour"),
        ("1 ½ cups flour", 1.5, "cup", "flour"),
        ("2 to 3 tbsp sugar", 2.0, "tablespoon", "sugar"),
        ("4-6 cups water", 4.0, "cup", "water"),
        ("¾ to 1 pound ground beef", 0.75, "pound", "ground beef"),
        ("250g butter", 250.0, "gram", "butter"),
        ("a pinch of salt", 1.0, "pinch", "salt"),
        ("2 T oil", 2.0, "tablespoon", "oil"),
        ("3 c basil", 3.0, "cup", "basil"),
        ("1 fl oz rum", 1.0, "fluid ounce", "rum"),
        ("1 small bunch parsley", 1.0, "bunch", "parsley"),
        ("¼ cup/4 tablespoons olive oil", 0.25, "cup", "olive oil"),
        ("About 2 cups rice", 2.0, "cup", "rice"),
        ("salt", None, None, "salt"),
        ("3 eggs", 3.0, None, "eggs"),
    ],
)
def test_leading_amount(line: str, quantity: float | None, unit: str | None, rest: str) -> None:
    amount = parse_amount(line)
    assert (amount.quantity, amount.unit, amount.rest) == (pytest.approx(quantity), unit, rest)


def test_units_are_kitchen_units_only() -> None:
    assert canonical_unit("tbsp") == canonical_unit("Tablespoons") == "tablespoon"
    assert canonical_unit("lbs") == "pound"
    assert canonical_unit("cloves") == "clove"
    # pint knows these, but in a recipe line they are words, not units
    assert canonical_unit("bar") == "bar"  # a count unit ("2 bars chocolate"), never pressure
    assert canonical_unit("m") is None
    assert canonical_unit("in") is None
    assert canonical_unit("banana") is None


@pytest.mark.parametrize(
    ("line", "name", "quantity", "unit"),
    [
        ("2 large eggs, beaten", "egg", 2.0, None),
        ("1 pound ground turkey", "ground turkey", 1.0, "pound"),
        ("½ cup fresh bean sprouts for garnish", "bean sprout", 0.5, "cup"),
        ("2 to 3 garlic cloves, peeled", "garlic", 2.0, "clove"),
        ("5 cloves garlic, minced", "garlic", 5.0, "clove"),
        ("2 tablespoons minced scallions (white and tender green parts)", "green onion", 2.0, "tablespoon"),
        ("extra-virgin olive oil", "olive oil", None, None),
        ("Heinz® tomato ketchup", "ketchup", None, None),
        ("1 (14-ounce) can diced tomatoes", "tomato", 1.0, "can"),
        ("1 cup grated gruyère", "gruyere cheese", 1.0, "cup"),
        ("½ teaspoon fresh or dried rosemary", "rosemary", 0.5, "teaspoon"),
        ("Juice of 1 lime", "lime juice", 1.0, None),
        ("Lemon juice, 3 tablespoons", "lemon juice", 3.0, "tablespoon"),
        ("2 tomatoe", "tomato", 2.0, None),
        ("molasses", "molasses", None, None),
        ("salt and pepper to taste", "salt and pepper", None, None),
        ("a dozen eggs", "egg", 12.0, None),
        ("Key lime juice", "lime juice", None, None),
        ("4 (6-ounce) boneless, skinless chicken breasts", "chicken breast", 4.0, None),
        ("Garnish: orange twist", "orange twist", None, None),
        ("Ground Beef 80/20", "ground beef", None, None),
        ("2% milk", "milk", None, None),
        ("1 x 400g tin chopped tomatoes", "tomato", 1.0, "tin"),
    ],
)
def test_resolved_lines(line: str, name: str, quantity: float | None, unit: str | None) -> None:
    a = resolve_with_rules(line)
    assert a.status == "resolved", a.reason
    assert a.canonical_name == name
    assert a.quantity == pytest.approx(quantity)
    assert a.unit == unit
    assert a.provider == "rules"
    assert 0 < a.confidence <= 1


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        (None, "empty"),
        ("", "empty"),
        ("   \t\n", "empty"),
        ("x" * 10_000, "too long"),
        ("'; DROP TABLE ingredient_match_queue; --", "SQL"),
        ("1 OR 1=1", "SQL"),
        ("SELECT * FROM users", "SQL"),
        ("<script>alert(1)</script>", "HTML"),
        ("<b>2 cups flour</b>", "HTML"),
        ("🍕🍔🌮", "no words"),
        ("😀", "no words"),
        ("12345", "no words"),
        ("https://example.com/recipe", "URL"),
        ("qwrtzpsdfg", "keyboard"),
        ("paper towels", "not a food"),
        ("4 AA batteries", "not a food"),
        ("laundry detergent", "not a food"),
        ("2 cups", "no ingredient name"),
        ("null", "placeholder"),
        ("N/A", "placeholder"),
        ("iPhone charger", "not a food"),
        ("Robert'); DROP TABLE Students;--", "SQL"),
        ("<img src=x onerror=alert(1)>", "HTML"),
        ("For the dressing:", "section heading"),
        ("FOR THE SAUCE", "section heading"),
        ("To garnish:", "section heading"),
        ("Salad:", "section heading"),
    ],
)
def test_junk_and_non_food_are_rejected_with_a_reason(text: str | None, reason_part: str) -> None:
    a = resolve_with_rules(text)
    assert a.status == "rejected"
    assert a.reason is not None and reason_part.lower() in a.reason.lower()
    assert a.canonical_name is None


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("For serving: lemon wedges", "lemon"),
        ("Optional: chili flakes", "red pepper flake"),
        ("Freshly grated parmesan, for serving", "parmesan cheese"),
        ("Vegetable oil, for frying", "vegetable oil"),
    ],
)
def test_lines_with_a_label_or_purpose_are_still_ingredients(line: str, name: str) -> None:
    a = resolve_with_rules(line)
    assert a.status == "resolved", a
    assert a.canonical_name is not None and name in a.canonical_name


def test_never_raises_on_arbitrary_text() -> None:
    rng = random.Random(3)
    alphabet = "abc xyz 0123456789½⅓/-,.()'\"<>;:🍕é\u200b\x00"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        a = resolve_with_rules(text)
        assert a.status in ("resolved", "rejected")
    # Words inflect's own type checks refuse (a real line of the labelled data had one).
    for text in ["9-by-2-inch round cake pan", "2 -by- 3 of- cups", "-of- -in- -by-", "of-the- flour"]:
        assert resolve_with_rules(text).status in ("resolved", "rejected")


def test_normalize_name_is_a_short_stable_key() -> None:
    assert normalize_name("  Garlic   CLOVES ") == "garlic cloves"
    assert normalize_name(None) == ""
    long_key = normalize_name("y" * 10_000)
    assert long_key.startswith("sha256:") and len(long_key) < 80
    assert long_key == normalize_name("Y" * 10_000)


def test_resolver_with_rules_only_answers_each_query_in_order() -> None:
    resolver = IngredientResolver.from_settings(Settings(llm_providers="rules"))
    texts = ["2 cups flour", "", "paper towels", "garlic", "2 cups flour"]
    queries = [IngredientQuery.of(t) for t in texts]
    answers = resolver.resolve(queries)
    assert [a.key for a in answers] == [q.key for q in queries]
    assert [a.status for a in answers] == ["resolved", "rejected", "rejected", "resolved", "resolved"]
    assert {a.provider for a in answers} == {"rules"}
    assert resolver.model_id.startswith("rules:")
    assert resolver.estimate_tokens(queries[0]) > resolver.estimate_tokens(queries[1]) > 0
    resolver.close()


def test_resolver_without_any_provider_fails_items_with_reason() -> None:
    resolver = IngredientResolver.from_settings(Settings(llm_providers="local"))  # local not enabled
    answers = resolver.resolve([IngredientQuery.of("garlic"), IngredientQuery.of("")])
    assert answers[0].status == "failed" and answers[0].reason
    assert answers[1].status == "rejected"  # junk never needs a model


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("1 can whole or diced tomatoes", "tomato"),
        ("1 lb extra-firm or firm tofu", "tofu"),
        ("5 whole cloves", "clove"),
        ("1 cup whole milk", "whole milk"),
        ("2 cups chard or spinach", "chard"),
    ],
)
def test_a_modifier_alone_is_not_the_name(line: str, name: str) -> None:
    assert resolve_with_rules(line).canonical_name == name


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("½ teaspoon cloves", "clove"),  # the count unit is the food
        ("3 Tbsp. Crisco", "crisco"),  # a brand alone is the name
        ("1 package (16 ounces) frozen mixed vegetables", "mixed vegetable"),  # nothing before "mixed"
        ("3 green bell peppers: cored, seeded and quartered", "bell pepper"),
        ("Eighteen sponge ladyfingers", "sponge ladyfinger"),  # only the head is checked for non-food
        ("Batter for 24 crêpes", "batter"),  # not a misspelt "battery"
        ("2 tbsp pan drippings", "pan dripping"),
    ],
)
def test_real_lines_that_were_refused(line: str, name: str) -> None:
    a = resolve_with_rules(line)
    assert (a.status, a.canonical_name) == ("resolved", name), a


@pytest.mark.parametrize(
    "line", ["9-by-2-inch round cake pan", "Skillet", "A hot charcoal grill", "Cookie cutter (optional)"]
)
def test_kitchen_tools_are_not_food(line: str) -> None:
    a = resolve_with_rules(line)
    assert a.status == "rejected" and a.reason and a.reason.startswith("not a food item"), a
