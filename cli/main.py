"""The `sous` command: every process of the stack starts through it.

Each subcommand lives in cli/commands/<name>.py with `add_arguments(parser)` and
`run(args) -> int`, imported only when chosen, so `sous migrate` never loads the model code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata
from types import ModuleType
from typing import NoReturn

from cli.common import one_line
from core.db import missing_table
from core.errors import ConfigError, DatabaseError, SousError

# name -> (module, what it does, the settings it reads besides LOG_LEVEL)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "migrate": (
        "cli.commands.migrate",
        "apply database migrations (alembic upgrade head)",
        "DATABASE_URL",
    ),
    "api": (
        "cli.commands.api",
        "serve the HTTP API under gunicorn",
        "DATABASE_URL, REDIS_URL, SERVICE_API_KEY, SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL, API_*, "
        "MENU_*, METRICS_ALLOWED_NETWORKS, DASHBOARD_SESSION_SECONDS, OBS_*, ALERT_*, the model settings",
    ),
    "dispatch": (
        "cli.commands.dispatch",
        "run the dispatcher (one per box)",
        "DATABASE_URL, REDIS_URL, BOX_ID, QUEUE_*, WORKER_INTERVAL_SECONDS, WORKER_COUNT, ROLLOUT_STAGE, "
        "DRY_RUN, LLM_PROVIDERS and the model settings",
    ),
    "work": (
        "cli.commands.work",
        "run one RQ worker",
        "DATABASE_URL, REDIS_URL, BOX_ID, QUEUE_*, LLM_PROVIDERS and the model settings",
    ),
    "sim": (
        "cli.commands.sim",
        "serve the OpenAI-compatible vLLM simulator",
        "none (flags only, --log-level for the level)",
    ),
    "drain": (
        "cli.commands.drain",
        "drain the queue in-process (the nightly fallback)",
        "DATABASE_URL, QUEUE_*, ROLLOUT_STAGE, DRY_RUN, LLM_PROVIDERS and the model settings",
    ),
    "enqueue": ("cli.commands.enqueue", "add ingredient rows to the queue", "DATABASE_URL"),
    "status": (
        "cli.commands.status",
        "queue depth, waits, throughput, workers, the fleet's stage, alerts (exit 2: alert or outage)",
        "DATABASE_URL, REDIS_URL, ALERT_*",
    ),
    "requeue-expired": (
        "cli.commands.requeue",
        "return rows with expired leases to pending",
        "DATABASE_URL, DRY_RUN, ROLLOUT_STAGE, QUEUE_MAX_ATTEMPTS",
    ),
    "shadow-report": (
        "cli.commands.shadow_report",
        "compare dry-run outputs with live results",
        "DATABASE_URL",
    ),
    "token": (
        "cli.commands.token",
        "mint a development JWT for a user",
        "SUPABASE_JWT_SECRET (and DATABASE_URL with --plan)",
    ),
    "demo": (
        "cli.commands.demo",
        "load demo ingredients and a rendered menu",
        "DATABASE_URL, REDIS_URL",
    ),
    "dev": (
        "cli.commands.dev",
        "run throwaway Postgres/Redis for local development",
        "DATABASE_URL and REDIS_URL when they answer (else throwaway servers), SERVICE_API_KEY and "
        "SUPABASE_JWT_SECRET (else generated under --state), API_PORT, WORKER_COUNT, QUEUE_SOURCE, "
        "QUEUE_REVIEW_MODE, LOCAL_LLM_BASE_URL, SOUS_SIM_PROFILE; the rest passes to the stack",
    ),
}
# Commands whose output is JSON already: `--json` is accepted for uniformity.
JSON_ALREADY = {"drain", "requeue-expired", "shadow-report"}


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def _version() -> str:
    try:
        return f"sous {metadata.version('sous')}"
    except metadata.PackageNotFoundError:
        return "sous (not installed)"


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (with where to look), not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="sous", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name, (_, help_text, reads) in COMMANDS.items():
        mod = _load(name) if name == chosen else None
        doc = (mod.__doc__ or help_text).strip() if mod is not None else help_text
        p = sub.add_parser(
            name,
            help=help_text,
            description=f"{doc}\n\nSettings read (environment): {reads}"
            + ("." if reads.startswith("none") else "; LOG_LEVEL."),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parsers[name] = p
        if mod is not None:
            mod.add_arguments(p)
            if name in JSON_ALREADY:
                p.add_argument("--json", action="store_true", help="output is JSON already")
    args, extra = parser.parse_known_args(argv)
    mod = _load(args.command)
    if extra and not getattr(mod, "ACCEPTS_EXTRA", False):
        parsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(mod.run(args) or 0)
    except ConfigError as exc:
        print(f"sous {args.command}: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG
    except DatabaseError as exc:
        if missing_table(exc):
            print(f"sous {args.command}: the database is not migrated: run `sous migrate`", file=sys.stderr)
        else:
            print(f"sous {args.command}: {exc.code}: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except SousError as exc:
        print(f"sous {args.command}: {exc.code}: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
