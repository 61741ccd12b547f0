"""sous shadow-report: agreement of DRY_RUN answers with what the nightly job (or the live
pipeline) wrote on the same rows, per field, with a sample of the disagreements."""

from __future__ import annotations

import argparse
import json

from core.db import create_engine, transaction
from core.logging import configure_logging
from core.settings import Settings
from worker.shadow import shadow_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=50, help="disagreements to list (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(needs=("database",))
    configure_logging(settings.log_level)
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1, app_name="sous-shadow-report")
    try:
        with transaction(engine) as conn:
            report = shadow_report(
                conn, max_disagreements=args.limit, columns=settings.shadow_compare_columns
            )
    finally:
        engine.dispose()
    print(json.dumps(report, indent=2, default=str))
    return 0
