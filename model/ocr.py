"""Menu photo → words with boxes and confidences → text lines in reading order.

Two OCR engines read the page (MENU_OCR_ENGINE): RapidOCR (PP-OCRv4 detection and recognition
as ONNX models shipped inside the `rapidocr-onnxruntime` wheel; model/ocr_rapid.py), the
default, and Tesseract (model/ocr_tesseract.py). Each returns text segments (runs of words on
one row) with pixel boxes and confidences; model/menu_layout.py then groups them into columns
and lines from their geometry. On the real development menus (BENCHMARKS.md) RapidOCR's text
holds 78 of 79 item names and the rules reach item+price F1 0.91, against 0.67 with Tesseract.

The image is decoded only when it is one of the accepted types, under a pixel cap (a small file
that expands to gigapixels is refused before any pixel is decoded), and turned upright from its
EXIF orientation. Every OCR call runs under a deadline (MENU_OCR_TIMEOUT_SECONDS) and is killed
when it passes it, so a pathological image fails its job instead of hanging the worker.
"""

from __future__ import annotations

import io
import time
import warnings
from typing import Literal

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import InvalidInput
from model import ocr_rapid, ocr_tesseract
from model.menu_layout import layout
from model.ocr_types import OcrLine, OcrResult, OcrTimeout, PageWords, Word

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_TIMEOUT_SECONDS = 120.0
OcrEngine = Literal["rapidocr", "tesseract"]
DEFAULT_ENGINE: OcrEngine = "rapidocr"
# What the API accepts (core/fetch.py sniffs the same types; the JPEG decoder also opens the
# multi-picture JPEGs some phones write). Nothing else reaches a decoder.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


class ImageRejected(InvalidInput):
    """The image can never be read: not an accepted image type, truncated, or a decompression bomb."""

    code = "IMAGE_REJECTED"


__all__ = [
    "ImageRejected",
    "OcrLine",
    "OcrResult",
    "OcrTimeout",
    "PageWords",
    "Word",
    "load_image",
    "ocr_image",
    "read_page",
]


def load_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, mode: str = "L") -> Image.Image:
    """Decodes `data` into an upright image in `mode`, refusing other file types and
    decompression bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
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
    except UnidentifiedImageError:
        accepted = ", ".join(ACCEPTED_FORMATS)
        raise ImageRejected(f"not a readable image of an accepted type ({accepted})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"not a readable image: {exc}") from None
    img: Image.Image = ImageOps.exif_transpose(opened) or opened
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # A transparent background would turn black in grayscale, under black text: put the
        # image on white paper first.
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert(mode)


def read_page(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    engine: OcrEngine = DEFAULT_ENGINE,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> PageWords:
    """The engine's segments for an image (no layout yet)."""
    deadline = time.monotonic() + timeout
    img = load_image(data, max_pixels)
    if engine == "tesseract":
        return ocr_tesseract.read_page(img, deadline)
    if engine == "rapidocr":
        return ocr_rapid.read_page(img, deadline)
    raise ValueError(f"unknown OCR engine {engine!r} (rapidocr or tesseract)")


def ocr_image(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    engine: OcrEngine = DEFAULT_ENGINE,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> OcrResult:
    """Reads a menu photo into lines in reading order (columns kept apart)."""
    started = time.monotonic()
    page = read_page(data, max_pixels, engine, timeout)
    return OcrResult(
        layout(page),
        page.width,
        page.height,
        engine=engine,
        seconds=round(time.monotonic() - started, 3),
        skew_degrees=page.skew_degrees,
        currency_symbol=page.currency_symbol,
    )
