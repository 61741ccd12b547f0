"""Session fixtures: a throwaway Postgres and Redis (or TEST_DATABASE_URL / TEST_REDIS_URL),
a migrated template database, and a fresh database cloned from it for every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis as redis_lib
import sqlalchemy as sa

from core import migrate
from core.db import create_engine, libpq_url
from devtools.services import PostgresServer, RedisServer

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        if kind in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))


def _replace_db(url: str, dbname: str) -> str:
    base, _, rest = libpq_url(url).rpartition("/")
    query = ("?" + rest.split("?", 1)[1]) if "?" in rest else ""
    return f"{base}/{dbname}{query}"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a server the tests may create databases on."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield libpq_url(os.environ["TEST_DATABASE_URL"])
        return
    server = PostgresServer()
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    name = f"sous_template_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate.upgrade(_replace_db(pg_admin_url, name))
    try:
        yield name
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _scratch_database(admin_url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    try:
        yield _replace_db(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    """An empty database (no migrations) for migration tests."""
    with _scratch_database(pg_admin_url, "sous_empty") as url:
        yield url


@pytest.fixture
def database_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test, cloned from the template."""
    with _scratch_database(pg_admin_url, "sous_test", template_db) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(database_url, pool_size=20)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    if os.environ.get("TEST_REDIS_URL"):
        yield _worker_database(os.environ["TEST_REDIS_URL"])
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.destroy()


def _worker_database(url: str) -> str:
    """`make test` runs two pytest workers, and each test empties its Redis database: on a shared
    TEST_REDIS_URL each worker takes a database of its own (gw0 -> 1, gw1 -> 2, ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{int(worker[2:]) + 1}"))


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """The test Redis, emptied before each test."""
    client = redis_lib.Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    yield redis_server_url
