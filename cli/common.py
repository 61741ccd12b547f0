"""What the commands share: the settings of those that work on the database, an engine, and
errors on one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from core.db import create_engine
from core.logging import configure_logging
from core.settings import Settings

ONE_LINE_CHARS = 500  # how much of an error the operator is shown on one line


def load_settings() -> Settings:
    """The settings of a command that needs DATABASE_URL (refused without it), logs configured."""
    settings = Settings.load(needs=("database",))
    configure_logging(settings.log_level)
    return settings


@contextmanager
def engine_for(settings: Settings, app_name: str, pool_size: int = 1) -> Iterator[sa.Engine]:
    """An engine on DATABASE_URL for the length of the command."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=pool_size, app_name=app_name)
    try:
        yield engine
    finally:
        engine.dispose()


def one_line(text: str) -> str:
    """An error's text on one line (the driver's are several), cut to ONE_LINE_CHARS."""
    return " ".join(text.split())[:ONE_LINE_CHARS]
