"""How often the menu's currency is read right: on rendered menus (seeded phone photos, every
price printed with its symbol, tests/menus.py) and on the real development menus of
../shared/data/real-menus (their truth names the currency). RapidOCR, as the worker runs it.

    python -m loadtest.bench_currency --seeds 0:40 --real ../shared/data/real-menus
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.menu import parse_with_rules
from model.ocr import ocr_image
from tests.menus import render_menu


def read_currency(image: bytes) -> str | None:
    return parse_with_rules(ocr_image(image, engine="rapidocr")).get("currency")


def seed_range(text: str) -> range:
    """START:COUNT -> the seeds, or a one-line argparse error."""
    try:
        start, count = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:COUNT, got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("COUNT must be at least 1")
    return range(start, start + count)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=seed_range, default="0:40", help="START:COUNT of rendered menus")
    parser.add_argument("--real", type=Path, default=None, help="the real-menus folder")
    args = parser.parse_args()
    right = 0
    for seed in args.seeds:
        menu = render_menu(seed)
        got = read_currency(menu.image)
        right += got == menu.currency
        print(f"rendered {seed}: truth {menu.currency}, read {got}", flush=True)
    print(f"rendered menus: {right}/{len(args.seeds)} currencies right")
    if args.real:
        if not args.real.is_dir():
            parser.error(f"--real: {args.real} is not a folder")
        truths = sorted(args.real.glob("*.json"))
        real_right = 0
        for truth_file in truths:
            truth = json.loads(truth_file.read_text(encoding="utf-8")).get("currency")
            got = read_currency(truth_file.with_suffix(".jpg").read_bytes())
            real_right += got == truth
            print(f"real {truth_file.stem}: truth {truth}, read {got}", flush=True)
        print(f"real menus: {real_right}/{len(truths)} currencies right")


if __name__ == "__main__":
    main()
