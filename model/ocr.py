"""Menu photo → text lines with word confidences (Pillow + Tesseract).

The image is decoded under a pixel cap (a small file that expands to gigapixels is refused
before any pixel is decoded), turned upright from its EXIF orientation, put on white when
transparent, made grayscale, inverted when it is light text on a dark board, stretched to full
contrast, scaled to a size Tesseract reads well and deskewed (up to 10 degrees). A page that
then reads fewer than 3 prices is read again turned the way Tesseract's orientation detection
says (or both sideways ways when it cannot tell), and the reading with more prices wins.
Tesseract runs in sparse-text mode (--psm 11): menus are blocks of short phrases, and
whole-line modes read dotted leaders as garbage that spills into the item names. Words are
then put back into lines, column by column: a menu's prices are right-aligned, so each
cluster of price right-edges marks the right edge of a column.
"""

from __future__ import annotations

import io
import os
import re
import statistics
import warnings
from dataclasses import dataclass

import pytesseract
from PIL import Image, ImageDraw, ImageOps, ImageStat

from core.errors import InvalidInput

DEFAULT_MAX_PIXELS = 40_000_000
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
PRICE_TOKEN = re.compile(r"^[$€£]?\d{1,4}[.,]\d{2}[$€£]?$|^[$€£]$")


class ImageRejected(InvalidInput):
    """The image can never be read: not an image, truncated, or a decompression bomb."""

    code = "IMAGE_REJECTED"


@dataclass(frozen=True)
class Word:
    text: str
    conf: float  # 0..100 as Tesseract reports it
    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def center_y(self) -> float:
        return self.top + self.height / 2


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float  # 0..1, mean of the words
    height: float  # median word height in pixels: headings are taller than items
    column: int
    words: tuple[Word, ...]


@dataclass(frozen=True)
class OcrResult:
    lines: list[OcrLine]
    width: int
    height: int

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def load_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decodes `data` into an upright grayscale image, refusing decompression bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
                    f"{max_pixels:,} (decompression bomb refused)"
                )
            opened.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from None
    except ImageRejected:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"not a readable image: {exc}") from None
    img: Image.Image = ImageOps.exif_transpose(opened) or opened
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # A transparent background would turn black in grayscale, under black text: put the
        # image on white paper first.
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L")


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


def turns_to_try(img: Image.Image) -> list[int]:
    """Clockwise turns that may make the page upright: the one Tesseract's orientation detection
    names, or, when it cannot tell (too little text, no osd.traineddata), both sideways turns.
    Its confidence is not used: on a sideways menu it said 0.6-0.9 and was right, and whatever
    it says, the turned page is kept only if it reads more prices."""
    try:
        osd = pytesseract.image_to_osd(img, config="--psm 0 -c min_characters_to_try=5")
    except pytesseract.TesseractError:
        return [90, 270]
    rotate = re.search(r"Rotate:\s*(\d+)", osd)
    turn = int(rotate[1]) % 360 if rotate else 0
    return [turn] if turn in (90, 180, 270) else [90, 270]


def _tesseract_words(img: Image.Image) -> list[Word]:
    # Tesseract's OpenMP threads fight each other and the other workers on a small box: one
    # thread is 3x faster here (17 s vs 55 s for ten menus on 2 cores). Set before the
    # subprocess starts, unless the operator chose otherwise.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    data = pytesseract.image_to_data(img, config="--psm 11", output_type=pytesseract.Output.DICT)
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


def read_words(img: Image.Image) -> list[Word]:
    """Tesseract's words. Leaders read as letters ('eeccce...') and spoil the price next to
    them, so when the first pass finds some they are painted out and the page read again."""
    words = _tesseract_words(img)
    leaders = _leaders(words)
    if leaders:
        img = img.copy()
        draw = ImageDraw.Draw(img)
        for w in leaders:
            draw.rectangle((w.left - 2, w.top - 3, w.right + 2, w.top + w.height + 3), fill=255)
        words = _tesseract_words(img)
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


def column_edges(words: list[Word], tolerance: float) -> list[float]:
    """Right edges of the columns: clusters of price right-edges (at least two prices each)."""
    edges = sorted(w.right for w in words if PRICE_TOKEN.match(w.text) and any(c.isdigit() for c in w.text))
    clusters: list[list[int]] = []
    for edge in edges:
        if clusters and edge - clusters[-1][-1] <= tolerance:
            clusters[-1].append(edge)
        else:
            clusters.append([edge])
    return [max(c) + tolerance for c in clusters if len(c) >= 2]


def _pricey(text: str) -> bool:
    return any(c.isdigit() for c in text) or text in ("$", "€", "£")


def drop_leader_junk(row: list[Word], h: float) -> list[Word]:
    """What is left of a leader after painting: specks far shorter than text, and a run of
    near-zero-confidence 'words' ('rere eee') between an item's name and its price."""
    row = [w for w in row if w.height >= 0.35 * h or _pricey(w.text)]
    price_at = len(row)
    while price_at > 0 and _pricey(row[price_at - 1].text):
        price_at -= 1
    if price_at == len(row):
        return row
    name_end = price_at
    while name_end > 0 and row[name_end - 1].conf < JUNK_CONFIDENCE:
        name_end -= 1
    return row[:name_end] + row[price_at:]


def group_lines(words: list[Word]) -> list[OcrLine]:
    if not words:
        return []
    h = statistics.median(w.height for w in words)
    edges = column_edges(words, tolerance=2.5 * h)

    def column_of(w: Word) -> int:
        for i, edge in enumerate(edges):
            if w.right <= edge:
                return i
        return max(len(edges) - 1, 0)

    lines: list[OcrLine] = []
    for col in sorted({column_of(w) for w in words}):
        rows: list[list[Word]] = []
        for w in sorted((w for w in words if column_of(w) == col), key=lambda w: w.center_y):
            if rows and abs(w.center_y - statistics.fmean(x.center_y for x in rows[-1])) <= 0.5 * h:
                rows[-1].append(w)
            else:
                rows.append([w])
        for unsorted in rows:
            row = drop_leader_junk(sorted(unsorted, key=lambda w: w.left), h)
            if not row:
                continue
            lines.append(
                OcrLine(
                    text=" ".join(w.text for w in row),
                    confidence=round(statistics.fmean(w.conf for w in row) / 100, 3),
                    height=statistics.median(w.height for w in row),
                    column=col,
                    words=tuple(row),
                )
            )
    return lines


def _prices(words: list[Word]) -> int:
    return sum(1 for w in words if PRICE_TOKEN.match(w.text) and any(c.isdigit() for c in w.text))


def ocr_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> OcrResult:
    img = prepare(load_image(data, max_pixels))
    words = read_words(img)
    if _prices(words) < MIN_PRICES_UPRIGHT:
        # Few prices read: maybe a photo taken sideways or upside down. Turning costs another
        # reading or two, so only pages that read badly pay for it; the best reading wins.
        for turn in turns_to_try(img):
            # Tesseract names clockwise turns; PIL turns anticlockwise.
            turned = level(img.rotate(-turn, expand=True, fillcolor=255))
            turned_words = read_words(turned)
            if _prices(turned_words) > _prices(words):
                img, words = turned, turned_words
    return OcrResult(group_lines(words), img.width, img.height)
