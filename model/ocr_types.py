"""The OCR data types shared by the engines (model/ocr_rapid.py, model/ocr_tesseract.py), the
layout (model/menu_layout.py) and the menu structurer."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import SousError


class OcrTimeout(SousError):
    """OCR did not finish within MENU_OCR_TIMEOUT_SECONDS; the engine was stopped."""

    code = "OCR_TIMEOUT"


@dataclass(frozen=True)
class Word:
    text: str
    conf: float  # 0..100 (Tesseract's scale; RapidOCR's 0..1 is scaled to it)
    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def center_y(self) -> float:
        return self.top + self.height / 2


@dataclass(frozen=True)
class PageWords:
    """What an engine read: segments (runs of words on one row, left to right), the size of
    the image the boxes refer to, and the page's tilt in degrees (positive: text rises to the
    right), which the layout takes out of the coordinates."""

    segments: list[list[Word]]
    width: int
    height: int
    skew_degrees: float = 0.0
    # The currency symbol printed beside the prices when the engine's text has none (RapidOCR
    # cannot write € or £; model/ocr_rapid.py reads it another way).
    currency_symbol: str | None = None


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float  # 0..1, mean of the words
    height: float  # median word height in pixels: headings are taller than items
    column: int  # the layout block (a column or a boxed part of one) the line belongs to
    words: tuple[Word, ...]
    top: float = 0.0  # deskewed page coordinates of the line's box
    left: float = 0.0
    right: float = 0.0
    # Blank space above the line within its block, in body-text heights; a large value
    # (or a new block) starts a new paragraph.
    gap_before: float = 0.0


@dataclass(frozen=True)
class OcrResult:
    lines: list[OcrLine]
    width: int
    height: int
    engine: str = "tesseract"
    seconds: float = 0.0
    skew_degrees: float = field(default=0.0, compare=False)
    currency_symbol: str | None = None  # see PageWords

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)
