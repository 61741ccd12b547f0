"""The Tesseract engine: a grayscale page → words with boxes and confidences.

The page is made dark text on light paper at full contrast (light text on a dark board is
inverted, a grey photo stretched), scaled to a size Tesseract reads well and deskewed (up to 10
degrees). A page that then reads fewer than 3 prices is read again turned the way Tesseract's
orientation detection says (or both sideways ways when it cannot tell), and the reading with
more prices wins. Tesseract runs in sparse-text mode (--psm 11): menus are blocks of short
phrases, and whole-line modes read dotted leaders as garbage that spills into the item names.
Each Tesseract call gets what is left of the job's OCR deadline as its timeout (pytesseract
kills the process when it passes).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import pytesseract
from PIL import Image, ImageDraw, ImageOps, ImageStat

from model.menu_layout import words_to_segments
from model.ocr_types import OcrTimeout, PageWords, Word

TARGET_LONG_SIDE = 2400  # large enough for ~30 px text on a page, small enough to stay fast
MIN_LONG_SIDE = 1200
# Phone photos of a menu lie up to this many degrees off level; more is a sideways photo.
MAX_SKEW_DEGREES = 10
# A page that reads fewer prices than this is checked for a sideways or upside-down photo.
MIN_PRICES_UPRIGHT = 3
# A page whose median grey is darker than this is light text on a dark background.
DARK_BACKGROUND = 100
LEADER = re.compile(r"^[.\u2026·•:_\-\u2013\u2014,'`]+$")
JUNK_CONFIDENCE = 30  # Tesseract's confidence (0..100) of a leader remnant read as letters
T = TypeVar("T")
PRICE_TOKEN = re.compile(r"^[$€£]?\d{1,4}[.,]\d{2}[$€£]?$|^[$€£]$")


def prepare(img: Image.Image) -> Image.Image:
    """Dark text on light paper at full contrast, scaled and levelled: light text on a dark
    background (a chalkboard) is inverted, and a grey photo is stretched to black and white
    (Tesseract read nothing at all of a menu whose levels spanned 90-180)."""
    if ImageStat.Stat(img).median[0] < DARK_BACKGROUND:
        img = ImageOps.invert(img)
    img = ImageOps.autocontrast(img, cutoff=1)
    long_side = max(img.size)
    if long_side > TARGET_LONG_SIDE or long_side < MIN_LONG_SIDE:
        scale = (TARGET_LONG_SIDE if long_side > TARGET_LONG_SIDE else MIN_LONG_SIDE) / long_side
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    return level(img)


def level(img: Image.Image) -> Image.Image:
    angle = estimate_skew(img)
    if abs(angle) >= 0.1:
        img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return img


def estimate_skew(img: Image.Image, max_angle: float = MAX_SKEW_DEGREES) -> float:
    """The rotation that makes text rows sharpest: the variance of the row-mean profile peaks
    when the lines are level. Whole degrees first, then quarter degrees around the best."""
    small = ImageOps.invert(img.resize((max(1, img.width // 3), max(1, img.height // 3))))

    def sharpness(angle: float) -> float:
        rotated = small.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=0)
        column = rotated.resize((1, rotated.height), Image.Resampling.BOX)
        profile = [float(v) for v in column.get_flattened_data()]  # type: ignore[arg-type]
        return statistics.pvariance(profile) if len(profile) > 1 else 0.0

    coarse = max(range(-int(max_angle), int(max_angle) + 1), key=lambda a: (sharpness(a), -abs(a)))
    fine = [coarse + q / 4 for q in range(-3, 4)]
    return max(fine, key=lambda a: (sharpness(a), -abs(a)))


def _seconds_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise OcrTimeout("OCR ran out of time (MENU_OCR_TIMEOUT_SECONDS)")
    return left


def _run(call: Callable[[], T]) -> T:
    """A pytesseract call; its timeout (it kills tesseract) becomes OcrTimeout."""
    try:
        return call()
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise OcrTimeout(f"tesseract stopped: {exc}") from None
        raise


def turns_to_try(img: Image.Image, deadline: float) -> list[int]:
    """Clockwise turns that may make the page upright: the one Tesseract's orientation detection
    names, or, when it cannot tell (too little text, no osd.traineddata), both sideways turns.
    Its confidence is not used: on a sideways menu it said 0.6-0.9 and was right, and whatever
    it says, the turned page is kept only if it reads more prices."""
    try:
        osd = _run(
            lambda: pytesseract.image_to_osd(
                img, config="--psm 0 -c min_characters_to_try=5", timeout=_seconds_left(deadline)
            )
        )
    except pytesseract.TesseractError:
        return [90, 270]
    rotate = re.search(r"Rotate:\s*(\d+)", osd)
    turn = int(rotate[1]) % 360 if rotate else 0
    return [turn] if turn in (90, 180, 270) else [90, 270]


def one_thread() -> None:
    """Tesseract's OpenMP threads fight each other and the other workers on a small box: one
    thread is 3x faster here (17 s vs 55 s for ten menus on 2 cores). Called before each
    Tesseract subprocess starts; an operator's own OMP_THREAD_LIMIT wins."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def _tesseract_words(img: Image.Image, deadline: float) -> list[Word]:
    one_thread()
    data = _run(
        lambda: pytesseract.image_to_data(
            img, config="--psm 11", output_type=pytesseract.Output.DICT, timeout=_seconds_left(deadline)
        )
    )
    return [
        Word(text.strip(), float(data["conf"][i]), *(data[k][i] for k in ("left", "top", "width", "height")))
        for i, text in enumerate(data["text"])
        if (text or "").strip() and float(data["conf"][i]) >= 0
    ]


def _leaders(words: list[Word]) -> list[Word]:
    """Dotted leaders: "words" far flatter than text, wider than a few characters or unreadable."""
    if not words:
        return []
    h = statistics.median(w.height for w in words)
    return [w for w in words if w.height < 0.4 * h and (w.width > 1.5 * h or w.conf < JUNK_CONFIDENCE)]


def read_words(img: Image.Image, deadline: float) -> list[Word]:
    """Tesseract's words. Leaders read as letters ('eeccce...') and spoil the price next to
    them, so when the first pass finds some they are painted out and the page read again."""
    words = _tesseract_words(img, deadline)
    leaders = _leaders(words)
    if leaders:
        img = img.copy()
        draw = ImageDraw.Draw(img)
        for w in leaders:
            draw.rectangle((w.left - 2, w.top - 3, w.right + 2, w.top + w.height + 3), fill=255)
        words = _tesseract_words(img, deadline)
    out = []
    for w in words:
        text = w.text
        if LEADER.match(text):
            continue
        # Leaders glued to a word ("Shrimp.....") are not part of it.
        text = re.sub(r"[.\u2026·]{3,}", "", text).strip()
        if text:
            out.append(Word(text, w.conf, w.left, w.top, w.width, w.height))
    return [w for w in out if w not in _leaders(out)]


def _prices(words: list[Word]) -> int:
    return sum(1 for w in words if PRICE_TOKEN.match(w.text) and any(c.isdigit() for c in w.text))


def read_page(gray: Image.Image, deadline: float) -> PageWords:
    img = prepare(gray)
    words = read_words(img, deadline)
    if _prices(words) < MIN_PRICES_UPRIGHT:
        # Few prices read: maybe a photo taken sideways or upside down. Turning costs another
        # reading or two, so only pages that read badly pay for it; the best reading wins.
        for turn in turns_to_try(img, deadline):
            # Tesseract names clockwise turns; PIL turns anticlockwise.
            turned = level(img.rotate(-turn, expand=True, fillcolor=255))
            turned_words = read_words(turned, deadline)
            if _prices(turned_words) > _prices(words):
                img, words = turned, turned_words
    return PageWords(words_to_segments(words), img.width, img.height)
