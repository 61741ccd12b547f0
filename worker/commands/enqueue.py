"""sous enqueue: add ingredient rows (names as arguments, or --file with one name a line)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import queue
from core.db import create_engine, transaction
from core.errors import InvalidInput
from core.logging import configure_logging
from core.settings import Settings

MAX_ROWS = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="ingredient names, as scraped")
    parser.add_argument("--file", type=Path, help="a file with one name a line ('-' for stdin)")
    parser.add_argument("--source", choices=("scraper", "recipe"), default="scraper")
    parser.add_argument("--unit", default=None, help="raw unit for every row")


def read_names(args: argparse.Namespace) -> list[str]:
    names = list(args.names)
    if args.file is not None:
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
        names += [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not names:
        raise InvalidInput("no names given: pass them as arguments or with --file")
    if len(names) > MAX_ROWS:
        raise InvalidInput(f"{len(names)} names: at most {MAX_ROWS} per call")
    return names


def run(args: argparse.Namespace) -> int:
    names = read_names(args)
    settings = Settings.load(needs=("database",))
    configure_logging(settings.log_level)
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1, app_name="sous-enqueue")
    rows = [{"raw_name": n, "source": args.source, "raw_unit": args.unit} for n in names]
    try:
        with transaction(engine) as conn:
            ids = queue.insert_rows(conn, rows)
    finally:
        engine.dispose()
    for row_id in ids:
        print(row_id)
    return 0
