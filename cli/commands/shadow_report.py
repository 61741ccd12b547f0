"""sous shadow-report: agreement of DRY_RUN answers with what the nightly job (or the live
pipeline) wrote on the same rows, per field, with a sample of the disagreements."""

from __future__ import annotations

import argparse
import json

from cli.common import engine_for, load_settings
from core.db import transaction
from worker.shadow import shadow_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=50, help="disagreements to list (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    with engine_for(settings, "sous-shadow-report") as engine, transaction(engine) as conn:
        report = shadow_report(conn, max_disagreements=args.limit, columns=settings.shadow_compare_columns)
    print(json.dumps(report, indent=2, default=str))
    return 0
