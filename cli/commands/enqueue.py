"""sous enqueue: add ingredient rows to the queue (names as arguments, or --file with one name
a line, '-' for stdin) and print their ids. A file that is missing, a directory, not UTF-8 text,
or a name with a NUL character is refused with one line and exit 1, before anything is written."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.common import engine_for, load_settings
from core import queue
from core.db import transaction
from core.errors import InvalidInput

MAX_ROWS = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="ingredient names, as scraped")
    parser.add_argument("--file", type=Path, help="a UTF-8 file with one name a line ('-' for stdin)")
    parser.add_argument("--source", choices=("scraper", "recipe"), default="scraper")
    parser.add_argument("--unit", default=None, help="raw unit for every row")
    parser.add_argument("--json", action="store_true", help='print {"ids": [...]} instead of one id a line')


def read_file(path: Path) -> str:
    """The file's text, or InvalidInput naming what is wrong with it (never a traceback)."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise InvalidInput(f"{path}: permission denied") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{path}: not UTF-8 text (line {line}, byte offset {exc.start})") from None


def check_name(name: str, where: str) -> None:
    # Postgres text cannot hold NUL, and an argument that was not UTF-8 arrives as surrogates.
    if "\x00" in name:
        raise InvalidInput(f"{where}: contains a NUL character, which a name cannot hold")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{where}: not UTF-8 text") from None


def read_names(args: argparse.Namespace) -> list[str]:
    names = list(args.names)
    for i, name in enumerate(names, 1):
        check_name(name, f"argument {i}")
    if args.file is not None:
        lines = read_file(args.file).split("\n")
        for number, line in enumerate(lines, 1):
            if line.strip():
                name = line.rstrip("\r")
                check_name(name, f"{args.file} line {number}")
                names.append(name)
    if not names:
        raise InvalidInput("no names given: pass them as arguments or with --file")
    if len(names) > MAX_ROWS:
        raise InvalidInput(f"{len(names)} names: at most {MAX_ROWS} per call")
    return names


def run(args: argparse.Namespace) -> int:
    names = read_names(args)
    settings = load_settings()
    rows = [{"raw_name": n, "source": args.source, "raw_unit": args.unit} for n in names]
    with engine_for(settings, "sous-enqueue") as engine, transaction(engine) as conn:
        ids = queue.insert_rows(conn, rows)
    if args.json:
        print(json.dumps({"ids": ids}))
    else:
        for row_id in ids:
            print(row_id)
    return 0
