"""sous migrate: alembic upgrade head (or --revision / --downgrade)."""

from __future__ import annotations

import argparse

from core import migrate
from core.logging import configure_logging
from core.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--downgrade", action="store_true", help="downgrade to --revision instead")


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(needs=("database",))
    configure_logging(settings.log_level)
    assert settings.database_url is not None
    if args.downgrade:
        migrate.downgrade(settings.database_url, "base" if args.revision == "head" else args.revision)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    return 0
