"""Layout from boxes (model/menu_layout.py) and the parser's paragraph rules, on synthetic word
boxes laid out the way the real menus are: no OCR engine runs here."""

from __future__ import annotations

import math

import pytest

from model.menu import lines_from_user_message, menu_user_message, parse_with_rules, validate_grounded_menu
from model.menu_layout import layout
from model.ocr import OcrResult, PageWords, Word
from model.ocr_rapid import page_skew, with_spaces

H = 30  # text height in pixels
CHAR = 15  # character width


def seg(text: str, x: float, y: float, h: int = H) -> list[Word]:
    """A segment (words on one row) starting at x, its top at y."""
    words, pos = [], x
    for token in text.split():
        width = len(token) * CHAR
        words.append(Word(token, 95.0, round(pos), round(y), width, h))
        pos += width + CHAR
    return words


def page(*segments: list[Word], skew: float = 0.0) -> PageWords:
    return PageWords(list(segments), 1400, 1800, skew)


def texts(p: PageWords) -> list[str]:
    return [line.text for line in layout(p)]


def menu_items(p: PageWords) -> list[tuple[str, float | None]]:
    lines = layout(p)
    result = parse_with_rules(OcrResult(lines, p.width, p.height))
    return [(i["name"], i["price"]) for c in result["menu"]["categories"] for i in c["items"]]


def test_two_columns_are_read_one_after_the_other_not_across() -> None:
    rows = [("the EGG SANDWICH $4", "the AVO TOAST $5"), ("over medium egg", "avocado mash")]
    segments = []
    for i, (left, right) in enumerate(rows):
        segments += [seg(left, 50, 100 + i * 40), seg(right, 700, 100 + i * 40)]
    lines = texts(page(*segments))
    assert lines == ["the EGG SANDWICH $4", "over medium egg", "the AVO TOAST $5", "avocado mash"]


def test_right_aligned_prices_join_their_names() -> None:
    p = page(
        seg("Frittatensuppe", 50, 100),
        seg("3,20", 560, 100),
        seg("Sliced savoury pancakes in beef soup", 50, 135),
        seg("Kaspressknödelsuppe", 50, 200),
        seg("13,90", 545, 200),
    )
    assert texts(p) == [
        "Frittatensuppe 3,20",
        "Sliced savoury pancakes in beef soup",
        "Kaspressknödelsuppe 13,90",
    ]


def test_two_columns_each_with_a_price_column() -> None:
    """Names, then prices, a narrow gutter, then the next column's names and prices."""
    segments = []
    for i in range(3):
        y = 100 + i * 80
        segments += [seg(f"Left dish {i}", 50, y), seg(f"{i + 3},80", 380, y)]
        segments += [seg(f"Right dish {i}", 480, y), seg(f"{i + 6},20", 830, y)]
    lines = texts(page(*segments))
    assert lines == [
        *(f"Left dish {i} {i + 3},80" for i in range(3)),
        *(f"Right dish {i} {i + 6},20" for i in range(3)),
    ]


def test_a_boxed_section_with_prices_in_their_own_column() -> None:
    p = page(
        seg("DAILY SPECIALS", 700, 1000),
        seg("MONDAY", 700, 1040),
        seg("Viva la poutine!", 700, 1075),
        seg("$5.00", 950, 1075),
        seg("TUESDAY", 700, 1115),
        seg("Basket of fries", 700, 1150),
        seg("$2.50", 950, 1150),
        seg("The Freshman", 50, 1000),
        seg("Golden brown toast $3.25", 50, 1035),
    )
    assert menu_items(p) == [("The Freshman", 3.25), ("Viva la poutine!", 5.0), ("Basket of fries", 2.5)]


def test_size_table_price_columns_and_their_header() -> None:
    p = page(
        seg("Herzhafte Pfannkuchen", 200, 40),
        seg("klein groß", 900, 90),
        seg("Pfannkuchen mit Gyros", 50, 130),
        seg("7,40 9,40", 900, 130),
        seg("Zwiebeln und Tzaziki", 50, 165),
        seg("Pfannkuchen mit Speck", 50, 230),
        seg("6,90 8,80", 900, 230),
    )
    assert menu_items(p) == [("Pfannkuchen mit Gyros", 7.4), ("Pfannkuchen mit Speck", 6.9)]


def _tilted(words: list[Word], degrees: float) -> list[Word]:
    """The words as a photo tilted `degrees` (rising to the right) shows them."""
    a = math.radians(degrees)
    out = []
    for w in words:
        cx, cy = w.left + w.width / 2, w.top + w.height / 2
        nx, ny = cx * math.cos(a) + cy * math.sin(a), -cx * math.sin(a) + cy * math.cos(a)
        out.append(
            Word(w.text, w.conf, round(nx - w.width / 2), round(ny - w.height / 2) + 200, w.width, w.height)
        )
    return out


def test_a_tilted_photo_still_gives_one_line_per_row() -> None:
    rows = [
        seg("Schnitzel mit Pommes oder Salat", 50, 100 + i * 36) + seg("9,90", 1100, 100 + i * 36)
        for i in range(4)
    ]
    tilted = [_tilted(r, 4.0) for r in rows]
    assert texts(page(*tilted, skew=4.0)) == ["Schnitzel mit Pommes oder Salat 9,90"] * 4
    # Without taking the tilt out the price of one row lands beside the next row's name.
    assert texts(page(*tilted, skew=0.0)) != ["Schnitzel mit Pommes oder Salat 9,90"] * 4


def test_page_skew_from_the_engines_line_boxes() -> None:
    def quad(x: float, y: float, w: float, h: float, deg: float) -> list[list[float]]:
        a = math.radians(deg)
        dx, dy = w * math.cos(a), -w * math.sin(a)
        return [[x, y], [x + dx, y + dy], [x + dx, y + dy + h], [x, y + h]]

    raw = [(quad(50, 100 + 40 * i, 600, 30, 3.0), "text", 0.9, [], []) for i in range(5)]
    assert abs(page_skew(raw) - 3.0) < 0.1


def test_price_at_the_end_of_the_description_belongs_to_the_name_above() -> None:
    p = page(
        seg("APPETIZERS", 50, 20, h=60),
        seg("Vive la Poutine!", 50, 100),
        seg("Freshly seasoned fries | Real cheese curds", 50, 132),
        seg("Vegan gravy $6.50", 50, 164),
        seg("1848 Fries", 50, 230),
        seg("Fresh, never-frozen French fries | House seasoning", 50, 262),
        seg("$3.50", 50, 294),
    )
    result = parse_with_rules(OcrResult(layout(p), p.width, p.height))
    items = result["menu"]["categories"][0]["items"]
    assert [(i["name"], i["price"]) for i in items] == [("Vive la Poutine!", 6.5), ("1848 Fries", 3.5)]
    assert items[0]["description"] == "Freshly seasoned fries | Real cheese curds Vegan gravy"


def test_a_name_over_two_lines_ends_at_the_leaders() -> None:
    p = page(
        seg("Roast Bratwurst in a Pretzel Roll ........ 4.75", 50, 100),
        seg("Apple Strudel with Werther's Original", 50, 170),
        seg("Karamel and Vanilla Sauce ..........", 50, 202),
        seg("3.50", 900, 202),
        seg("Selbach Riesling QbA Red Label ...... 2.75", 50, 280),
        seg("Eugen Wehrheim Niersteiner Spiegelberg", 50, 312),
        seg("Dornfelder ...................", 50, 344),
        seg("2.75", 900, 344),
    )
    assert menu_items(p) == [
        ("Roast Bratwurst in a Pretzel Roll", 4.75),
        ("Apple Strudel with Werther's Original Karamel and Vanilla Sauce", 3.5),
        ("Selbach Riesling QbA Red Label", 2.75),
        ("Eugen Wehrheim Niersteiner Spiegelberg Dornfelder", 2.75),
    ]


def test_description_lines_under_an_item_are_not_items() -> None:
    p = page(
        seg("Pfannkuchen mit Gyros 7,40", 50, 100),
        seg("Zwiebeln und Tzaziki", 50, 132),
        seg("Pfannkuchen mit Birne 7,40", 50, 200),
        seg("Camembert und Preiselbeeren", 50, 232),
    )
    lines = layout(p)
    result = parse_with_rules(OcrResult(lines, p.width, p.height))
    items = result["menu"]["categories"][0]["items"]
    assert [(i["name"], i.get("description")) for i in items] == [
        ("Pfannkuchen mit Gyros", "Zwiebeln und Tzaziki"),
        ("Pfannkuchen mit Birne", "Camembert und Preiselbeeren"),
    ]


def test_allergen_codes_are_not_part_of_the_name() -> None:
    p = page(seg("Frittatensuppe A,C,G 3,20", 50, 100), seg("the CLASSIC B.L.T. $8.5", 50, 200))
    assert menu_items(p) == [("Frittatensuppe", 3.2), ("the CLASSIC B.L.T", 8.5)]


def _char_boxes(text: str, gaps: dict[int, float]) -> tuple[list[str], list[list[list[float]]]]:
    """Characters 12 px apart, wider where `gaps` says (index → extra pixels)."""
    chars, boxes, x = [], [], 0.0
    for i, c in enumerate(text):
        x += 12 + gaps.get(i, 0)
        chars.append(c)
        boxes.append([[x - 5, 0], [x + 5, 0], [x + 5, 30], [x - 5, 30]])
    return chars, boxes


def test_spaces_the_recognizer_dropped_are_put_back() -> None:
    chars, boxes = _char_boxes("theEGGSANDWICHS4", {6: 14})
    assert with_spaces("theEGGSANDWICHS4", chars, boxes)[0] == "the EGG SANDWICHS4"
    chars, boxes = _char_boxes("1848Fries", {})
    assert with_spaces("1848Fries", chars, boxes)[0] == "1848 Fries"
    chars, boxes = _char_boxes("7,409,40", {3: 14, 4: 14})  # digits far apart stay one number
    assert with_spaces("7,409,40", chars, boxes)[0] == "7,409,40"  # the parser splits the prices
    chars, boxes = _char_boxes("Schnitzel", {})
    assert with_spaces("Schnitzel", chars, boxes)[0] == "Schnitzel"


def test_the_model_reads_blocks_in_reading_order_with_their_positions() -> None:
    p = page(
        seg("the EGG SANDWICH S4", 50, 100),
        seg("over medium egg", 50, 135),
        seg("the AVO TOAST S5", 700, 100),
        seg("avocado mash +$6 salmon", 700, 135),
    )
    ocr = OcrResult(layout(p), p.width, p.height)
    message = menu_user_message(ocr)
    body = message.split("\n", 1)[1].splitlines()
    assert body == [
        "## block 1 (x 4%-24%, y 6%)",
        "the EGG SANDWICH $4",
        "over medium egg",
        "## block 2 (x 50%-75%, y 6%)",
        "the AVO TOAST $5",
        "avocado mash +$6 salmon",
    ]
    assert lines_from_user_message(message) == [line for line in body if not line.startswith("##")]
    answer = {
        "menu": {
            "categories": [
                {"name": "", "items": [{"name": "the EGG SANDWICH", "price": 4, "confidence": 0.9}]}
            ]
        },
        "currency": "USD",
        "uncertainItems": [],
        "superfluousText": [],
    }
    assert validate_grounded_menu(answer, ocr)["menu"]["categories"][0]["items"][0]["price"] == 4
    answer["menu"]["categories"][0]["items"][0]["price"] = 7  # type: ignore[index]
    with pytest.raises(ValueError, match="not in the OCR text"):
        validate_grounded_menu(answer, ocr)


def test_size_prices_read_as_one_word_still_join_their_names() -> None:
    p = page(
        seg("Pfannkuchen mit Gyros", 50, 130),
        seg("7,409,40", 900, 130),
        seg("Radeberger Pilsner .......", 50, 200),
        seg(".3.506.7512.25", 900, 200),
    )
    assert menu_items(p) == [("Pfannkuchen mit Gyros", 7.4), ("Radeberger Pilsner", 3.5)]
