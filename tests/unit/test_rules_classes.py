"""Line classes the rules used to cut wrongly (issue 14), each tested as a class with lines of
its own shape: multiplied packs, dash and "this/if/can" asides, "each of", containers,
preparation participles before the name, compound names, and regional names."""

from __future__ import annotations

import pytest

from model.rules import resolve_with_rules


def read(line: str) -> tuple[str | None, float | None, str | None]:
    a = resolve_with_rules(line)
    assert a.status == "resolved", a
    return a.canonical_name, a.quantity, a.unit


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("4 x 200g/7oz salmon fillets", ("salmon fillet", 4.0, None)),
        ("2 x 400g tins chopped tomatoes", ("tomato", 2.0, "tin")),
        ("3 \u00d7 150ml pots natural yogurt", ("yogurt", 3.0, "pot")),
        ("6 x 1 oz / 28 g squares dark chocolate", ("chocolate", 6.0, "square")),
    ],
)
def test_multiplied_packs_count_the_packs_and_drop_their_size(
    line: str, expected: tuple[object, ...]
) -> None:
    assert read(line) == expected


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("milk - this can be infused but must be cold", "milk"),
        ("250ml double cream - if you can find it, use Jersey", "heavy cream"),
        ("1 lemon \u2013 you can use a lime instead", "lemon"),
        ("2 tbsp honey \u2014 or maple syrup", "honey"),
        ("1 tsp vanilla extract if you have it", "vanilla extract"),
        ("200g spinach this can be frozen", "spinach"),
    ],
)
def test_dash_and_aside_words_end_the_name(line: str, name: str) -> None:
    assert read(line)[0] == name


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("good shake each of cumin seeds", "cumin seed"),
        ("1 tsp each of ground cumin and paprika", "cumin and paprika"),
        ("a pinch each of salt and pepper", "salt and pepper"),
    ],
)
def test_each_of_is_not_part_of_the_name(line: str, name: str) -> None:
    assert read(line)[0] == name


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1 small punnet of raspberries", ("raspberry", 1.0, "punnet")),
        ("2 tubs of ricotta", ("ricotta cheese", 2.0, "tub")),
        ("a knob of butter", ("butter", 1.0, "knob")),
        ("4 rashers smoked streaky bacon", ("bacon", 4.0, "rasher")),
        ("1 pot of natural yoghurt", ("yogurt", 1.0, "pot")),
    ],
)
def test_containers_are_the_unit_not_the_name(line: str, expected: tuple[object, ...]) -> None:
    assert read(line) == expected


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("5 cracked juniper berries", "juniper berry"),
        ("4 smashed garlic cloves", "garlic"),
        ("3 bruised lemongrass stalks", "lemongrass"),
        ("¾ cup well-shaken, canned coconut milk", "coconut milk"),
        ("1 pound washed, hulled, and dried strawberries", "strawberry"),
        # Vocabulary words that end like participles stay: they say which food it is.
        ("2 cups dried cherries", "dried cherry"),
        ("1 can sweetened condensed milk", "condensed milk"),
        ("2 tbsp rapeseed oil", "canola oil"),
    ],
)
def test_preparation_participles_before_the_name_are_dropped(line: str, name: str) -> None:
    assert read(line)[0] == name


@pytest.mark.parametrize(
    "line", ["1 quart half and half", "2 cups Half & Half", "1 cup half 'n' half", "½ cup half-and-half"]
)
def test_compound_names_with_and_stay_whole(line: str) -> None:
    assert read(line)[0] == "half-and-half"


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("500g pork mince", "ground pork"),
        ("400g lamb mince", "ground lamb"),
        ("1 lb turkey mince", "ground turkey"),
        ("450g mince", "ground beef"),
        ("100g caster sugar", "granulated sugar"),
        ("300ml double cream", "heavy cream"),
        ("2 courgettes", "zucchini"),
        ("200g king prawns", "shrimp"),
        ("a bunch of fresh coriander", "cilantro"),
        ("2 red chillies, deseeded", "chili"),
        ("200g self-raising flour", "self-rising flour"),
        ("1 chicken stock cube", "bouillon cube"),
        ("1 swede", "rutabaga"),
        ("2 pak choi", "bok choy"),
        ("1 tsp bicarbonate of soda", "baking soda"),
    ],
)
def test_regional_names_map_to_the_canonical_vocabulary(line: str, name: str) -> None:
    assert read(line)[0] == name
