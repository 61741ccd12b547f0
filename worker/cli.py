"""The `sous` command: every process of the stack starts through it.

Each subcommand lives in worker/commands/<name>.py with `add_arguments(parser)` and
`run(args) -> int`, imported only when chosen, so `sous migrate` never loads the model code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from core.errors import ConfigError, SousError

COMMANDS: dict[str, tuple[str, str]] = {
    "migrate": ("worker.commands.migrate", "apply database migrations (alembic upgrade head)"),
    "api": ("worker.commands.api", "serve the HTTP API under gunicorn"),
    "dispatch": ("worker.commands.dispatch", "run the dispatcher (one per box)"),
    "work": ("worker.commands.work", "run one RQ worker"),
    "sim": ("worker.commands.sim", "serve the OpenAI-compatible vLLM simulator"),
    "drain": ("worker.commands.drain", "drain the queue in-process (the nightly fallback)"),
    "enqueue": ("worker.commands.enqueue", "add ingredient rows to the queue"),
    "status": ("worker.commands.status", "queue depth, waits, throughput, workers, alerts"),
    "requeue-expired": ("worker.commands.requeue", "return rows with expired leases to pending"),
    "shadow-report": ("worker.commands.shadow_report", "compare dry-run outputs with live results"),
    "token": ("worker.commands.token", "mint a development JWT for a user"),
    "demo": ("worker.commands.demo", "load demo ingredients and a rendered menu"),
    "dev": ("worker.commands.dev", "run throwaway Postgres/Redis for local development"),
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sous", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            _load(name).add_arguments(p)
    args, extra = parser.parse_known_args(argv)
    mod = _load(args.command)
    if extra and not getattr(mod, "ACCEPTS_EXTRA", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(mod.run(args) or 0)
    except ConfigError as exc:
        print(f"sous {args.command}: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG
    except SousError as exc:
        print(f"sous {args.command}: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
