"""Runs the alembic migrations shipped in the `migrations` package, and shows their plan."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from core import db
from core.adoption import apply
from core.adoption.plan import Plan


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("migrations")))
    # alembic's ini interpolation treats % specially.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """One transaction; raises AdoptionRefused (nothing changed) for a table sous cannot use."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
    if revision == "base":
        # alembic keeps its (now empty) version table; the app's schema had none.
        engine = db.create_engine(database_url, pool_size=1, app_name="sous-migrate")
        try:
            with db.transaction(engine) as conn:
                apply.drop_empty_version_table(conn)
        finally:
            engine.dispose()


def plan(database_url: str) -> Plan:
    """What `upgrade` would do to this database; reads only (the transaction is rolled back)."""
    engine = db.create_engine(database_url, pool_size=1, app_name="sous-migrate-plan")
    try:
        with engine.connect() as conn:
            try:
                return apply.current_plan(conn)
            finally:
                conn.rollback()
    finally:
        engine.dispose()
