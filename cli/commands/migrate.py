"""sous migrate: adopt the database in place (alembic upgrade head), show the plan, or downgrade."""

from __future__ import annotations

import argparse
import sys

import psycopg
from sqlalchemy import exc as sa_exc

from cli.common import load_settings
from core import migrate
from core.adoption.apply import AdoptionRefused
from core.adoption.plan import Plan
from core.errors import DatabaseError

EXIT_REFUSED = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--downgrade", action="store_true", help="downgrade to --revision instead")
    parser.add_argument(
        "--plan", action="store_true", help="print what the upgrade would do to this database; change nothing"
    )


def print_plan(todo: Plan) -> None:
    if not todo.steps:
        print("nothing to do: the database already has everything sous needs")
    for step in todo.steps:
        print(f"{step.action:8} {step.summary}")
    for note in todo.notes:
        print(f"note     {note}")


def refuse(problems: list[str]) -> int:
    for line in problems:
        print(f"sous migrate: cannot adopt {line}", file=sys.stderr)
    print("sous migrate: refused; nothing was changed", file=sys.stderr)
    return EXIT_REFUSED


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    # Migrations need a session (DDL, one long transaction): the direct/session URL when given.
    url = settings.database_listen_url or settings.database_url
    assert url is not None
    try:
        if args.plan:
            todo = migrate.plan(url)
            if todo.problems:
                return refuse(todo.problems)
            print_plan(todo)
        elif args.downgrade:
            migrate.downgrade(url, "base" if args.revision == "head" else args.revision)
        else:
            migrate.upgrade(url, args.revision)
    except AdoptionRefused as exc:
        return refuse(exc.problems)
    except (sa_exc.SQLAlchemyError, psycopg.Error) as exc:
        # Plan steps run on the raw driver cursor, so driver errors arrive unwrapped too.
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseError(f"migration failed, nothing was changed: {detail}") from None
    return 0
