"""The database engine (SQLAlchemy 2 on psycopg 3) and named-query execution.

Engines are built by entrypoints (after RQ forks), never at import.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from core.errors import DatabaseError
from core.sql import query


def sqlalchemy_url(database_url: str) -> str:
    """postgres:// and postgresql:// both mean psycopg 3 here."""
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg{sep}{rest}"
    return database_url


def libpq_url(database_url: str) -> str:
    """The same URL in the form psycopg.connect() and psql accept."""
    scheme, sep, rest = database_url.partition("://")
    if scheme.startswith("postgresql+") or scheme == "postgres":
        return f"postgresql{sep}{rest}"
    return database_url


def create_engine(database_url: str, *, pool_size: int = 5, app_name: str = "sous") -> sa.Engine:
    return sa.create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        # No server-side prepared statements: through a transaction-mode pooler (PgBouncer,
        # Supabase's 6543) the next transaction may run on another server connection.
        connect_args={"application_name": app_name, "connect_timeout": 10, "prepare_threshold": None},
    )


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction; driver errors come out as DatabaseError."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(str(exc.orig).strip() or exc.__class__.__name__) from exc


def execute(
    conn: sa.Connection, name: str, params: Mapping[str, Any] | None = None, *, package: str = "core"
) -> sa.CursorResult[Any]:
    """Run the named query `name` from core/queries.sql (or `package`/queries.sql)."""
    try:
        return conn.execute(sa.text(query(name, package)), dict(params or {}))
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(f"{name}: {str(exc.orig).strip()}") from exc


def fetch_all(
    conn: sa.Connection, name: str, params: Mapping[str, Any] | None = None, *, package: str = "core"
) -> list[dict[str, Any]]:
    return [dict(row) for row in execute(conn, name, params, package=package).mappings()]


def fetch_one(
    conn: sa.Connection, name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    row = execute(conn, name, params).mappings().first()
    return dict(row) if row is not None else None


def fetch_value(
    conn: sa.Connection, name: str, params: Mapping[str, Any] | None = None, *, package: str = "core"
) -> Any:
    return execute(conn, name, params, package=package).scalar()


def missing_table(exc: BaseException) -> bool:
    """The error says a table is missing (SQLSTATE 42P01): the database is not migrated."""
    orig = getattr(exc.__cause__, "orig", None)
    return getattr(orig, "sqlstate", None) == "42P01"
