"""OCR segments → text lines in reading order, from the geometry of their boxes.

A menu is read block by block, not in page-wide rows: "the EGG SANDWICH $4" in the left column
and "the AVO TOAST $5" in the right one are two lines of two blocks. The page is cut
recursively at its widest empty band (an X-Y cut): a vertical band that runs the whole height
of a region is a gutter between columns, a horizontal one a gap between sections. Vertical
cuts win over horizontal ones of the same width, so columns whose rows line up stay apart.
A vertical gap with prices (or size labels: klein/groß, 6oz, Pt.) just right of it is not a
gutter but a price column, and is not cut: its prices belong to the names on their left.

Inside a block, segments whose centres lie within half a line height of each other form a
line, left to right. The page's tilt (from the engine) is taken out of the coordinates first,
so a photo a few degrees off level still gives one line per row. Each line keeps its box and
the blank space above it (in text heights), which the parser reads as paragraph breaks.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

from model.ocr_types import OcrLine, PageWords, Word

# Two words on one row with a gap narrower than this many text heights are one segment.
SEGMENT_GAP = 1.2
# Narrowest gutter between columns and narrowest gap between sections, in text heights.
MIN_GUTTER = 0.8
MIN_SECTION_GAP = 0.5
VERTICAL_PREFERENCE = 1.5  # a vertical gap counts this many times its width
PRICE_COLUMN_SHARE = 0.5  # share of the segments just right of a gap that are prices
JUNK_CONFIDENCE = 30
_PRICE_WORD = re.compile(
    r"^[|+(]?[$€£¥₺S]?\s?\d{0,4}[.,]?\d{1,2}\s?(€|\$|£|TL|₺|EUR|USD|CHF)?[)]?[.,]?$|^[$€£₺]$|^TL$|^(EUR|CHF)$"
    r"|^[.]*(\d{1,3}[.,]\d{2}){2,}$"  # the prices of a size table read as one word: "7,409,40"
)
_OTHER_SCRIPT = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LEADER = re.compile(r"^[.\u2026·•:_\-\u2013\u2014,'`]+$")
SIZE_WORDS = frozenset(
    {
        "klein", "groß", "gross", "grob", "mittel", "small", "medium", "large", "regular", "reg",
        "sm", "md", "lg", "pt", "qt", "pint", "quart", "half", "full", "cup", "bowl", "glass",
        "bottle", "carafe", "pcs", "pc", "pieces", "stk", "oz", "ml", "cl", "l", "petit", "grand",
        "kl", "gr", "single", "double", "slice", "whole", "portion", "piccolo", "grande",
    }
)  # fmt: skip
_SIZE = re.compile(r"^\d+([.,]\d+)?\s?(oz|ml|cl|l|pcs?|stk|\"|in|cm|g|kg)\.?$", re.IGNORECASE)


def is_price_or_size(text: str) -> bool:
    """A segment that is only prices, leaders and size labels ("7,40 9,40", "6oz 12oz", "Pt.")."""
    text = _OTHER_SCRIPT.sub(" ", text)  # an icon read as a glyph of another script: "3.25器"
    tokens = [t for t in text.split() if not _LEADER.match(t)]
    return bool(tokens) and all(
        _PRICE_WORD.match(t.strip(".")) or _SIZE.match(t) or t.strip(".:").lower() in SIZE_WORDS
        for t in tokens
    )


@dataclass
class _Seg:
    words: list[Word]
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def words_to_segments(words: list[Word]) -> list[list[Word]]:
    """Single words (Tesseract's) → segments: neighbours on one row with a small gap."""
    if not words:
        return []
    h = statistics.median(w.height for w in words)
    segments: list[list[Word]] = []
    for w in sorted(words, key=lambda w: (w.left, w.top)):
        for seg in segments:
            last = seg[-1]
            same_row = abs(last.center_y - w.center_y) <= 0.5 * h
            if same_row and -0.2 * h <= w.left - last.right <= SEGMENT_GAP * h:
                seg.append(w)
                break
        else:
            segments.append([w])
    return segments


def _deskewed(page: PageWords) -> list[_Seg]:
    """Segments with boxes in coordinates turned by the page's tilt (rows level again)."""
    angle = math.radians(page.skew_degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    out = []
    for words in page.segments:
        if not words:
            continue
        moved = []
        for w in words:
            cx, cy = w.left + w.width / 2, w.top + w.height / 2
            # Turn the page by -tilt about its origin: a rising line becomes level.
            nx, ny = cx * cos - cy * sin, cx * sin + cy * cos
            moved.append(
                Word(w.text, w.conf, round(nx - w.width / 2), round(ny - w.height / 2), w.width, w.height)
            )
        out.append(
            _Seg(
                moved,
                min(w.left for w in moved),
                max(w.right for w in moved),
                min(w.top for w in moved),
                max(w.bottom for w in moved),
            )
        )
    return out


def _gaps(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Empty bands (start, end) between the merged intervals."""
    gaps = []
    ordered = sorted(intervals)
    reach = ordered[0][1]
    for lo, hi in ordered[1:]:
        if lo > reach:
            gaps.append((reach, lo))
        reach = max(reach, hi)
    return gaps


def _price_column(region: list[_Seg], cut: float, h: float) -> bool:
    near = [s for s in region if cut <= s.x0 <= cut + h]
    prices = sum(1 for s in near if is_price_or_size(s.text))
    return bool(near) and prices >= PRICE_COLUMN_SHARE * len(near)


def _cut(region: list[_Seg], h: float) -> list[list[_Seg]]:
    """The X-Y cut: the region's blocks in reading order."""
    if len(region) < 2:
        return [region]
    best: tuple[float, str, float] | None = None
    for lo, hi in _gaps([(s.x0, s.x1) for s in region]):
        width = hi - lo
        if width >= MIN_GUTTER * h and not _price_column(region, hi, h):
            score = width * VERTICAL_PREFERENCE
            if best is None or score > best[0]:
                best = (score, "x", (lo + hi) / 2)
    for lo, hi in _gaps([(s.y0, s.y1) for s in region]):
        width = hi - lo
        if width >= MIN_SECTION_GAP * h and (best is None or width > best[0]):
            best = (width, "y", (lo + hi) / 2)
    if best is None:
        return [region]
    _, axis, at = best
    if axis == "x":
        first = [s for s in region if s.x1 <= at]
        second = [s for s in region if s.x1 > at]
    else:
        first = [s for s in region if s.y1 <= at]
        second = [s for s in region if s.y1 > at]
    return _cut(first, h) + _cut(second, h)


def drop_leader_junk(row: list[Word], h: float) -> list[Word]:
    """What is left of a leader: specks far shorter than text, and a run of near-zero-confidence
    'words' ('rere eee') between an item's name and its price."""
    row = [w for w in row if w.height >= 0.35 * h or any(c.isdigit() for c in w.text)]
    price_at = len(row)
    while price_at > 0 and _PRICE_WORD.match(row[price_at - 1].text):
        price_at -= 1
    if price_at == len(row):
        return row
    name_end = price_at
    while name_end > 0 and row[name_end - 1].conf < JUNK_CONFIDENCE:
        name_end -= 1
    return row[:name_end] + row[price_at:]


def _rows(block: list[_Seg]) -> list[list[_Seg]]:
    rows: list[list[_Seg]] = []
    for seg in sorted(block, key=lambda s: s.cy):
        height = seg.y1 - seg.y0
        if rows:
            row_cy = statistics.median(s.cy for s in rows[-1])
            row_h = statistics.median(s.y1 - s.y0 for s in rows[-1])
            if abs(seg.cy - row_cy) <= 0.5 * min(height, row_h):
                rows[-1].append(seg)
                continue
        rows.append([seg])
    return rows


def layout(page: PageWords) -> list[OcrLine]:
    """The page's lines in reading order, block by block."""
    segs = _deskewed(page)
    if not segs:
        return []
    h = statistics.median(w.height for s in segs for w in s.words)
    lines: list[OcrLine] = []
    for block_no, block in enumerate(_cut(segs, h)):
        previous_bottom: float | None = None
        for row in _rows(block):
            words = [w for s in sorted(row, key=lambda s: s.x0) for w in s.words]
            words = drop_leader_junk(words, h)
            if not words:
                continue
            top = min(s.y0 for s in row)
            bottom = max(s.y1 for s in row)
            gap = 99.0 if previous_bottom is None else max(0.0, (top - previous_bottom) / h)
            previous_bottom = bottom
            lines.append(
                OcrLine(
                    text=" ".join(w.text for w in words),
                    confidence=round(statistics.fmean(w.conf for w in words) / 100, 3),
                    height=statistics.median(w.height for w in words),
                    column=block_no,
                    words=tuple(words),
                    top=top,
                    left=min(s.x0 for s in row),
                    right=max(s.x1 for s in row),
                    gap_before=round(gap, 2),
                )
            )
    return lines
