"""JSON logs on stdout, one object per line.

Fields go through `extra=`. A key that names a `LogRecord` attribute (`created`, `name`,
`msg`, `args`, ...) makes the standard library raise KeyError inside the log call, i.e. inside
whatever request or job was logging. Two guards make that impossible: `configure_logging`
installs `FieldSafeLogger`, which namespaces such a key as `field_<key>` instead of raising, and
tests/unit/test_logging_fields.py fails on any log call in the code base that passes one.
"""

from __future__ import annotations

import json
import logging
import sys
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# How much of a text (an error's, a payload's) one log field carries.
LOG_TEXT_CHARS = 300
# Attributes every LogRecord has; anything else passed through `extra=` is a field.
RESERVED_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
FIELD_PREFIX = "field_"


def safe_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` with every reserved LogRecord name namespaced (`created` -> `field_created`)."""
    return {(FIELD_PREFIX + key if key in RESERVED_FIELDS else key): value for key, value in extra.items()}


def log_text(value: object) -> str:
    """`value` as text, cut to LOG_TEXT_CHARS for a log field."""
    return str(value)[:LOG_TEXT_CHARS]


def _make_record(  # noqa: PLR0917 - the signature of Logger.makeRecord
    self: logging.Logger,
    name: str,
    level: int,
    fn: str,
    lno: int,
    msg: object,
    args: Any,
    exc_info: Any,
    func: str | None = None,
    extra: Mapping[str, object] | None = None,
    sinfo: str | None = None,
) -> logging.LogRecord:
    if extra:
        extra = safe_fields(extra)
    return logging.Logger.makeRecord(self, name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)


class FieldSafeLogger(logging.Logger):
    """A Logger whose `extra=` can never clash with the record's own attributes."""

    makeRecord = _make_record  # type: ignore[assignment]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in RESERVED_FIELDS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def install_field_guard() -> None:
    """Loggers made from now on are FieldSafeLogger; those that exist already (module-level
    `getLogger(__name__)` runs at import, before any entrypoint) get its makeRecord."""
    logging.setLoggerClass(FieldSafeLogger)
    existing = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in existing:
        if isinstance(logger, logging.Logger) and not isinstance(logger, FieldSafeLogger):
            logger.makeRecord = types.MethodType(_make_record, logger)  # type: ignore[method-assign]


def configure_logging(level: str = "INFO") -> None:
    """Called once by each entrypoint; never at import."""
    install_field_guard()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a library's warning (Pillow's bomb warning) is a JSON line too
