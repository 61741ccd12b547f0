"""alembic environment: the URL comes from `sous migrate` (or DATABASE_URL for plain alembic)."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from core.db import sqlalchemy_url

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
if not url:
    raise SystemExit("DATABASE_URL: missing (alembic needs a database to migrate)")

engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    # One transaction for the whole upgrade: it applies completely or changes nothing.
    context.configure(connection=connection, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
