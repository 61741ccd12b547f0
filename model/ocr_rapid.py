"""The RapidOCR engine: PP-OCRv4 text detection, direction and recognition as ONNX models, all
shipped inside the rapidocr-onnxruntime wheel (nothing is downloaded at run time).

It runs in a child process, one per worker process, started on first use and kept warm across
jobs (model loading costs ~1 s): ONNX Runtime computes in native threads that neither a Python
timeout nor RQ's job-timeout signal can interrupt, but a process can be killed. The parent waits
for the answer until the job's OCR deadline; when it passes, it kills the child (by its own pid)
and raises OcrTimeout, and the next page starts a fresh child.

The recognizer's dictionary is Chinese + ASCII: it drops most spaces between Latin words
("theEGGSANDWICH") and reads umlauts without their dots. Spaces are put back from the character
positions the recognizer reports: a gap between two characters clearly wider than the line's
usual character pitch is a space.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import pytesseract
from PIL import Image

from model import ocr_tesseract
from model.menu_layout import is_price_or_size
from model.menu_prices import menu_currency
from model.ocr_types import OcrTimeout, PageWords, Word

# RapidOCR shrinks larger pages to this itself; shrinking here first keeps a 12-megapixel phone
# photo from being copied to the child whole, and JPEG decoding can skip the detail.
MAX_LONG_SIDE = 2000
# A gap between character centres this many times the line's median pitch is a space.
SPACE_PITCH = 1.8
# Boxes this much taller than wide are vertical text: a sideways page when most are.
SIDEWAYS_SHARE = 0.5
SYMBOL_SAMPLE = 12  # prices whose surroundings are read for a currency symbol
# Reading that strip takes a fraction of a second alone and several seconds on a busy box (3.6 s
# beside three busy processes on 2 cores); past this the menu goes on without a symbol.
SYMBOL_SECONDS = 30.0
SYMBOL_SEEN_ALONE = 3  # sightings that name the symbol when no other one competes
ERROR_TEXT = 200
_BARE_PRICE = re.compile(r"\d{1,4}[.,]\d{2}")
log = logging.getLogger(__name__)
RawLine = tuple[list[list[float]], str, float, list[list[list[float]]], list[str]]


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - only the child loads the models

    engine = RapidOCR()
    while True:
        try:
            request_id, pixels = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result, _ = engine(pixels, return_word_box=True)
            conn.send((request_id, "ok", [_plain(r) for r in result or []]))
        except Exception as exc:  # the parent turns it into the job's error
            conn.send((request_id, "error", f"{exc.__class__.__name__}: {exc}"))


def _plain(row: Any) -> RawLine:
    box, text, score = row[0], row[1], row[2]
    char_boxes = row[3] if len(row) > 3 and row[3] else []
    chars = row[4] if len(row) > 4 and row[4] else []
    return (
        [[float(x), float(y)] for x, y in box],
        str(text),
        float(score),
        [[[float(x), float(y)] for x, y in b] for b in char_boxes],
        [str(c) for c in chars],
    )


class _Child:
    """The OCR child process of this process (rebuilt after a fork or a kill). It is a fresh
    interpreter (`python -m model.ocr_rapid FD`), not a multiprocessing child: that would
    re-import the parent's main script, and fork would copy a process holding threads."""

    def __init__(self) -> None:
        parent_sock, child_sock = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model.ocr_rapid", str(child_sock.fileno())],
            pass_fds=(child_sock.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._request_ids = itertools.count(1)

    def read(self, pixels: Any, deadline: float) -> list[RawLine]:
        with self._lock:  # one page at a time: the answers come back in order on one socket
            request_id = next(self._request_ids)
            # Sending blocks while the child is still starting (the page is megabytes, the pipe
            # holds less), so it happens beside the wait, which alone watches the deadline.
            sender = threading.Thread(target=self._send, args=((request_id, pixels),), daemon=True)
            sender.start()
            try:
                status, payload = self._answer_to(request_id, deadline)
            except BaseException:
                # The deadline, a dead child, or the caller interrupted mid-page (an RQ job
                # timeout raises inside the wait): the child's answer to this page must never
                # reach the next page's caller, so the child goes and the next page gets a new one.
                self.kill()
                raise
        if status != "ok":
            raise RuntimeError(f"RapidOCR failed: {payload}")
        return list(payload)

    def _answer_to(self, request_id: int, deadline: float) -> tuple[str, Any]:
        while True:
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                raise OcrTimeout("RapidOCR did not finish within MENU_OCR_TIMEOUT_SECONDS; stopped")
            try:
                answered_id, status, payload = self.conn.recv()
            except (EOFError, OSError):
                raise OcrTimeout("the RapidOCR process died while reading the page") from None
            if answered_id == request_id:
                return status, payload
            # An answer to an earlier page whose caller gave up: never this page's text.

    def _send(self, message: tuple[int, Any]) -> None:
        with contextlib.suppress(OSError):  # the child was killed: the reader reports it
            self.conn.send(message)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        global _child  # noqa: PLW0603 - the process's one child
        self.process.kill()
        self.process.wait(5)
        self.conn.close()
        _child = None


_child: _Child | None = None


def child() -> _Child:
    global _child  # noqa: PLW0603
    if _child is None or _child.pid != os.getpid() or not _child.alive():
        _child = _Child()
    return _child


def _pixels(img: Image.Image) -> Any:
    import numpy as np  # noqa: PLC0415 - numpy comes with the engine, loaded when it is used

    return np.asarray(img.convert("RGB"))


def shrink(img: Image.Image) -> Image.Image:
    long_side = max(img.size)
    if long_side <= MAX_LONG_SIDE:
        return img
    scale = MAX_LONG_SIDE / long_side
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)


def with_spaces(text: str, chars: list[str], boxes: list[list[list[float]]]) -> tuple[str, list[float]]:
    """`text` with the spaces the recognizer dropped put back, and the x centre of each of its
    characters (spaces included). Without usable positions, the text as it came.

    Signs of a lost space: a step between character centres far wider than the line's usual
    pitch, a lower-case letter followed by a word in capitals ("theEGG"), a number followed by
    a capital ("1848Fries"). Never beside a decimal point."""
    if len(chars) != len(boxes) or not all(boxes):
        return text, []
    placed = [(c, statistics.fmean(p[0] for p in b)) for c, b in zip(chars, boxes, strict=True)]
    placed = [(c, x) for c, x in placed if not c.isspace()]
    letters = [c for c in text if not c.isspace()]
    if [c for c, _ in placed] != letters or len(letters) < 2:
        return text, []
    steps = [b[1] - a[1] for a, b in itertools.pairwise(placed)]
    pitch = statistics.median(steps)
    out: list[str] = []
    xs: list[float] = []
    i = 0
    for c in text:
        if c.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                xs.append(xs[-1])
            continue
        if i > 0 and out[-1] != " " and out[-1] not in ".," and c not in ".,":
            # Not between digits: a number's digits can sit far apart ("7,4 0"), and prices of a
            # size table read as one word are split by the parser ("7,409,40").
            wide = (
                pitch > 0 and steps[i - 1] > SPACE_PITCH * pitch and not (out[-1].isdigit() and c.isdigit())
            )
            camel = out[-1].islower() and c.isupper() and _caps_follow(letters, i)
            number_then_word = out[-1].isdigit() and c.isupper()  # "1848Fries", "1848BURGERS"
            if wide or camel or number_then_word:
                out.append(" ")
                xs.append((placed[i - 1][1] + placed[i][1]) / 2)
        out.append(c)
        xs.append(placed[i][1])
        i += 1
    return "".join(out), xs


def _caps_follow(letters: list[str], i: int) -> bool:
    """letters[i] starts a word in capitals (two or more upper-case letters)."""
    return len(letters) > i + 1 and letters[i].isupper() and letters[i + 1].isupper()


def _angle(box: list[list[float]]) -> float:
    (x0, y0), (x1, y1) = box[0], box[1]
    return math.degrees(math.atan2(-(y1 - y0), x1 - x0))  # positive: the line rises to the right


def segments(raw: list[RawLine]) -> list[list[Word]]:
    """One segment per detected text line, split into words at (restored) spaces. Each word is
    placed along the line's middle, so a tilted line gives words of text height (not the height
    of the tilted box) whose centres the layout can level."""
    out: list[list[Word]] = []
    for box, text, score, char_boxes, chars in raw:
        spaced, centres = with_spaces(text.strip(), chars, char_boxes)
        tokens = spaced.split()
        if not tokens:
            continue
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = box
        start_x, start_y = (x0 + x3) / 2, (y0 + y3) / 2  # middle of the left edge
        end_x, end_y = (x1 + x2) / 2, (y1 + y2) / 2
        length = max(math.hypot(end_x - start_x, end_y - start_y), 1.0)
        height = max(1, round(math.hypot(x3 - x0, y3 - y0)))
        if centres and abs(end_x - start_x) > 1:
            fractions = [(c - start_x) / (end_x - start_x) for c in centres]
        else:  # no positions: share the line out by character count
            fractions = [(i + 0.5) / max(len(spaced), 1) for i in range(len(spaced))]
        pitch = 1 / max(len(spaced), 1)
        words: list[Word] = []
        pos = 0
        for token in tokens:
            first = spaced.index(token, pos)
            last = first + len(token) - 1
            pos = last + 1
            lo, hi = max(0.0, fractions[first] - pitch / 2), min(1.0, fractions[last] + pitch / 2)
            middle = (lo + hi) / 2
            cx, cy = start_x + (end_x - start_x) * middle, start_y + (end_y - start_y) * middle
            width = max(1, round((hi - lo) * length))
            words.append(
                Word(
                    token, round(score * 100, 1), round(cx - width / 2), round(cy - height / 2), width, height
                )
            )
        out.append(words)
    return out


def _box(seg: list[Word]) -> tuple[int, int, int, int]:
    return (
        min(w.left for w in seg),
        min(w.top for w in seg),
        max(w.right for w in seg),
        max(w.bottom for w in seg),
    )


def upside_down(segs: list[list[Word]]) -> bool:
    """A page photographed upside down: the direction model has turned every line the right
    way round, but the lines lie in mirrored places, so prices stand left of their names."""
    boxes = [(_box(s), is_price_or_size(" ".join(w.text for w in s))) for s in segs if s]
    left = right = 0
    for (x0, y0, x1, y1), price in boxes:
        if not price:
            continue
        row = [b for b, p in boxes if not p and abs((b[1] + b[3]) - (y0 + y1)) / 2 < 0.5 * (y1 - y0)]
        left += bool(row) and all(x1 <= b[0] for b in row)
        right += bool(row) and all(b[2] <= x0 for b in row)
    return left >= 2 and left > 2 * right


def mirrored(segs: list[list[Word]], width: int, height: int) -> list[list[Word]]:
    """Each segment moved to its place on the page turned half round; the words inside keep
    their order (the recognizer read them turned already)."""
    out = []
    for seg in segs:
        x0, y0, x1, y1 = _box(seg)
        dx, dy = (width - x1) - x0, (height - y1) - y0
        out.append([Word(w.text, w.conf, w.left + dx, w.top + dy, w.width, w.height) for w in seg])
    return out


def page_skew(raw: list[RawLine]) -> float:
    """The median angle of the long text lines: the page's tilt."""
    angles = []
    for box, *_ in raw:
        width = math.dist(box[0], box[1])
        height = math.dist(box[1], box[2])
        if width > 4 * height:
            angles.append(_angle(box))
    return round(statistics.median(angles), 2) if len(angles) >= 3 else 0.0


def _sideways(raw: list[RawLine]) -> bool:
    tall = sum(1 for box, *_ in raw if math.dist(box[1], box[2]) > 1.5 * math.dist(box[0], box[1]))
    return len(raw) >= 3 and tall >= SIDEWAYS_SHARE * len(raw)


def read_page(gray: Image.Image, deadline: float) -> PageWords:
    img = shrink(gray)
    raw = child().read(_pixels(img), deadline)
    if _sideways(raw):
        # A photo taken sideways: most text boxes stand upright. Read it turned a quarter; the
        # direction model puts any line that is then upside down the right way round.
        turned = img.rotate(-90, expand=True)
        turned_raw = child().read(_pixels(turned), deadline)
        # The recognizer reads an upright crop of sideways text too, so the sideways reading has
        # about as much text: the turned one wins when its lines lie level.
        if not _sideways(turned_raw) and sum(len(r[1]) for r in turned_raw) >= 0.8 * sum(
            len(r[1]) for r in raw
        ):
            img, raw = turned, turned_raw
    segs = segments(raw)
    skew = page_skew(raw)
    if upside_down(segs):
        segs = mirrored(segs, img.width, img.height)
        img = img.rotate(180)  # the page the mirrored boxes are on
    symbol = None if menu_currency(r[1] for r in raw) else printed_symbol(img, segs, deadline)
    return PageWords(segs, img.width, img.height, skew, symbol)


def printed_symbol(img: Image.Image, segs: list[list[Word]], deadline: float) -> str | None:
    """The currency symbol printed beside the prices when the recognizer read none: its
    dictionary has "$" but no "€" or "£". A strip of the prices with some room either side is
    read once by Tesseract (a fraction of a second), and a symbol it sees beside most of them
    is the menu's."""
    prices = [w for seg in segs for w in seg if _BARE_PRICE.fullmatch(w.text)][:SYMBOL_SAMPLE]
    if len(prices) < 2:
        return None
    crops = []
    for w in prices:
        pad = round(1.5 * w.height)
        crop = img.crop((w.left - pad, w.top - w.height // 4, w.right + pad, w.bottom + w.height // 4))
        scale = 40 / max(crop.height, 1)
        crops.append(crop.resize((max(1, round(crop.width * scale)), 40)))
    strip = Image.new("L", (max(c.width for c in crops) + 40, 60 * len(crops) + 20), 255)
    for i, crop in enumerate(crops):
        strip.paste(crop.convert("L"), (20, 20 + 60 * i))
    ocr_tesseract.one_thread()
    try:
        text = pytesseract.image_to_string(
            strip, config="--psm 6", timeout=max(1.0, min(SYMBOL_SECONDS, deadline - time.monotonic()))
        )
    except (RuntimeError, pytesseract.TesseractError) as exc:
        # No symbol is better than no menu; the currency then comes from the words alone.
        log.warning("ocr_symbol_unread", extra={"error": str(exc)[:ERROR_TEXT], "prices": len(prices)})
        return None
    return symbol_read(text, len(prices))


def symbol_read(text: str, prices: int) -> str | None:
    """The currency symbol Tesseract's reading of `prices` price crops shows: one seen beside
    most of them; or, where noise hides it beside some (Tesseract misses a symbol on a grainy
    photo about half the time), one seen again and again with no other competing."""
    counts = Counter(c for c in text if c in "€£$¥₺").most_common()
    if not counts:
        return None
    symbol, seen = counts[0]
    rival = counts[1][1] if len(counts) > 1 else 0
    if seen * 2 >= prices or (seen >= SYMBOL_SEEN_ALONE and seen >= 3 * rival):
        return symbol
    return None


if __name__ == "__main__":  # pragma: no cover - the child process
    _serve(Connection(int(sys.argv[1])))
