"""Real menu photos (../shared/data/real-menus, beside the clone in CI; never copied into the
repository) through the default OCR engine and the rules, scored as that folder's README says.

Two of the five development menus keep the run short (about 10 s): the dark festival board
(dotted leaders, a 6oz/12oz/22oz size table, a name over two lines) and the 380x450 sign photo
(klein/groß columns, comma decimals). `python -m loadtest.bench_menus` scores all five.
"""

from __future__ import annotations

import pytest

from loadtest.menu_score import REAL_MENUS, Score, extracted_items, load_truth, names_in_text, score_items
from model.menu import parse_with_rules
from model.ocr import ocr_image

MENUS = ("epcot-germany-board", "pfannkuchen-sign-photo")

pytestmark = pytest.mark.skipif(
    not REAL_MENUS.is_dir(), reason=f"the real development menus are not at {REAL_MENUS}"
)


def test_real_menu_photos_item_and_price_f1() -> None:
    total = Score()
    names = expected = 0
    for menu in (m for m in load_truth() if m.name in MENUS):
        ocr = ocr_image(menu.image.read_bytes())
        names += names_in_text(ocr.text, menu)
        expected += len(menu.items)
        total.add(score_items(extracted_items(parse_with_rules(ocr)), menu))
    assert expected == 25  # both menus were found and labelled as expected
    assert names / expected >= 0.95
    assert total.f1 >= 0.85, (total.precision, total.recall)
