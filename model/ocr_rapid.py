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

import itertools
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from PIL import Image

from model.ocr_types import OcrTimeout, PageWords, Word

# RapidOCR shrinks larger pages to this itself; shrinking here first keeps a 12-megapixel phone
# photo from being copied to the child whole, and JPEG decoding can skip the detail.
MAX_LONG_SIDE = 2000
# A gap between character centres this many times the line's median pitch is a space.
SPACE_PITCH = 1.8
# Boxes this much taller than wide are vertical text: a sideways page when most are.
SIDEWAYS_SHARE = 0.5
RawLine = tuple[list[list[float]], str, float, list[list[list[float]]], list[str]]


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - only the child loads the models

    engine = RapidOCR()
    while True:
        try:
            pixels = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result, _ = engine(pixels, return_word_box=True)
            conn.send(("ok", [_plain(r) for r in result or []]))
        except Exception as exc:  # the parent turns it into the job's error
            conn.send(("error", f"{exc.__class__.__name__}: {exc}"))


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

    def read(self, pixels: Any, deadline: float) -> list[RawLine]:
        try:
            self.conn.send(pixels)
            ready = self.conn.poll(max(0.0, deadline - time.monotonic()))
        except OSError:
            self.kill()
            raise OcrTimeout("the RapidOCR process died before reading the page") from None
        if not ready:
            self.kill()
            raise OcrTimeout("RapidOCR did not finish within MENU_OCR_TIMEOUT_SECONDS; stopped")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise OcrTimeout("the RapidOCR process died while reading the page") from None
        if status != "ok":
            raise RuntimeError(f"RapidOCR failed: {payload}")
        return list(payload)

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
            wide = pitch > 0 and steps[i - 1] > SPACE_PITCH * pitch
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
    """One segment per detected text line, split into words at (restored) spaces."""
    out: list[list[Word]] = []
    for box, text, score, char_boxes, chars in raw:
        xs_all = [p[0] for p in box]
        ys_all = [p[1] for p in box]
        left, right = min(xs_all), max(xs_all)
        top, bottom = min(ys_all), max(ys_all)
        spaced, centres = with_spaces(text.strip(), chars, char_boxes)
        conf = round(score * 100, 1)
        tokens = spaced.split()
        if not tokens:
            continue
        if not centres:  # no positions: share the box out by character count
            total = max(len(spaced), 1)
            centres = [left + (right - left) * (i + 0.5) / total for i in range(len(spaced))]
        pitch = (right - left) / max(len(spaced), 1)
        words: list[Word] = []
        pos = 0
        for token in tokens:
            start = spaced.index(token, pos)
            end = start + len(token) - 1
            pos = end + 1
            x0 = max(left, centres[start] - pitch / 2)
            x1 = min(right, centres[end] + pitch / 2)
            words.append(
                Word(token, conf, round(x0), round(top), max(1, round(x1 - x0)), round(bottom - top))
            )
        out.append(words)
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
        if sum(len(r[1]) for r in turned_raw) >= sum(len(r[1]) for r in raw):
            img, raw = turned, turned_raw
    return PageWords(segments(raw), img.width, img.height, page_skew(raw))


if __name__ == "__main__":  # pragma: no cover - the child process
    _serve(Connection(int(sys.argv[1])))
