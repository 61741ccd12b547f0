"""The OCR engines themselves: accepted image types, timeouts that stop the engine, a phone-size
photo inside the job's time, and RapidOCR reading a menu line (real engines, no mocks)."""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PIL import Image, ImageDraw, ImageFont

from core.jobs import MENU_JOB_TIMEOUT as JOB_TIMEOUT
from model import ocr_rapid, ocr_tesseract
from model.menu import parse_with_rules
from model.ocr import ImageRejected, OcrTimeout, load_image, ocr_image
from tests.menus import FONT_DIR, match_items, render_menu


def _encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX"])
def test_image_types_pillow_knows_but_the_api_does_not_accept_are_refused(fmt: str) -> None:
    data = _encode(Image.new("RGB", (64, 64), "white"), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow alone would decode it
    with pytest.raises(ImageRejected, match="not a readable image of an accepted type"):
        load_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_accepted_image_types_decode(fmt: str) -> None:
    assert load_image(_encode(Image.new("RGB", (64, 48), "white"), fmt)).size == (64, 48)


def test_tesseract_is_stopped_at_the_deadline() -> None:
    img = ocr_tesseract.prepare(load_image(render_menu(7, two_columns=True).image))
    started = time.monotonic()
    with pytest.raises(OcrTimeout):
        ocr_tesseract.read_words(img, deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started < 3  # killed, not waited for


def test_rapidocr_is_killed_at_the_deadline_and_the_next_page_gets_a_fresh_process() -> None:
    page = load_image(render_menu(7, two_columns=True).image)
    child = ocr_rapid.child()
    started = time.monotonic()
    with pytest.raises(OcrTimeout):
        child.read(ocr_rapid._pixels(page), deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 5
    assert child.process.poll() is not None  # the process is gone
    fresh = ocr_rapid.child()
    assert fresh is not child
    small = page.crop((0, 0, page.width, page.height // 4))
    assert ocr_rapid.read_page(small, time.monotonic() + 120).segments


def test_a_4000x3000_phone_photo_is_read_well_inside_the_job_timeout() -> None:
    menu = render_menu(11, two_columns=True)
    page = Image.open(io.BytesIO(menu.image)).convert("RGB")
    photo = Image.new("RGB", (4000, 3000), (200, 190, 170))  # the table around the menu
    scale = min(2800 / page.height, 3600 / page.width)  # the menu fills the frame
    photo.paste(page.resize((round(page.width * scale), round(page.height * scale))), (200, 100))
    data = _encode(photo, "JPEG")
    started = time.monotonic()
    ocr = ocr_image(data)
    seconds = time.monotonic() - started
    result = parse_with_rules(ocr)
    got = [(i["name"], i["price"]) for c in result["menu"]["categories"] for i in c["items"]]
    assert seconds < JOB_TIMEOUT / 5, seconds
    assert match_items(got, menu.items) >= 0.8 * len(menu.items)


def test_rapidocr_reads_a_menu_line_with_its_spaces_and_price() -> None:
    font = ImageFont.truetype(str(FONT_DIR / "dejavu/DejaVuSans-Bold.ttf"), 34)
    img = Image.new("RGB", (900, 160), "white")
    draw = ImageDraw.Draw(img)
    draw.text((30, 30), "the EGG SANDWICH $4", font=font, fill="black")
    draw.text((30, 90), "Kaspressknödelsuppe 3,90", font=font, fill="black")
    ocr = ocr_image(_encode(img, "PNG"), engine="rapidocr")
    assert [line.text for line in ocr.lines] == ["the EGG SANDWICH $4", "Kaspressknodelsuppe 3,90"]
    assert all(w.conf > 50 and w.width > 0 for line in ocr.lines for w in line.words)


def _line(text: str) -> Image.Image:
    font = ImageFont.truetype(str(FONT_DIR / "dejavu/DejaVuSans-Bold.ttf"), 34)
    img = Image.new("RGB", (700, 100), "white")
    ImageDraw.Draw(img).text((30, 30), text, font=font, fill="black")
    return img


class Interrupted(Exception):
    """What RQ's job timeout does to a task: an exception raised wherever the task is waiting."""


@contextmanager
def interrupted_after(seconds: float) -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _read_text(img: Image.Image) -> str:
    lines = ocr_rapid.child().read(ocr_rapid._pixels(img), deadline=time.monotonic() + 120)
    return " ".join(line[1] for line in lines)


def test_a_page_interrupted_mid_read_never_answers_the_next_page() -> None:
    ocr_rapid.child().kill()  # a fresh child: the first page waits for its models to load
    with pytest.raises(Interrupted), interrupted_after(0.3):
        _read_text(_line("FIRST PAGE 1.00"))
    # The first page's answer was still coming; the second caller must get its own page.
    assert "SECOND" in _read_text(_line("SECOND PAGE 2.00"))


def test_pages_read_from_two_threads_each_get_their_own_text() -> None:
    texts = {name: "" for name in ("ALPHA", "BRAVO", "CHARLIE", "DELTA")}

    def read(name: str) -> None:
        texts[name] = _read_text(_line(f"{name} 3.50"))

    threads = [threading.Thread(target=read, args=(name,)) for name in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(name in text for name, text in texts.items()), texts


@pytest.mark.parametrize(
    ("strip", "prices", "symbol"),
    [
        ("€12.50\n€9.00\n8.50\n€7.25", 4, "€"),  # beside most prices
        ("e39.25 €\n©1579\n€20.25\n€19.95\n4.00\n9.95\n16.00", 12, "€"),  # 3 of 12, no rival
        ("£39.25\n€15.79\n€20.25\n€19.95\n4.00\n9.95", 12, "€"),  # 3 against 1
        ("£39.25\n£15.79\n€20.25\n€19.95\n€4.00\n9.95", 12, None),  # 3 against 2: unsure
        ("€39.25\n15.79\n20.25\n€19.95\n4.00\n9.95", 12, None),  # twice in 12: noise
        ("39.25\n15.79", 2, None),
    ],
)
def test_the_printed_symbol_is_the_one_seen_beside_most_prices_or_alone_again_and_again(
    strip: str, prices: int, symbol: str | None
) -> None:
    assert ocr_rapid.symbol_read(strip, prices) == symbol
