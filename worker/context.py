"""Per-process resources of a worker or dispatcher: settings, engine, Redis.

Built on first use in the process that uses them (RQ forks a work horse per job, and a pool
inherited across fork would share sockets), never at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis
import sqlalchemy as sa

from core.db import create_engine
from core.settings import Settings


@dataclass
class WorkerContext:
    settings: Settings
    engine: sa.Engine
    redis: redis.Redis[bytes]
    pid: int

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


_context: WorkerContext | None = None


def get_context(settings: Settings | None = None) -> WorkerContext:
    global _context  # noqa: PLW0603 - one context per process, rebuilt after fork
    if _context is None or _context.pid != os.getpid():
        s = settings or Settings.load(needs=("database", "redis"))
        assert s.database_url is not None and s.redis_url is not None
        _context = WorkerContext(
            settings=s,
            engine=create_engine(s.database_url, pool_size=2, app_name=f"sous-worker-{s.box_id}"),
            redis=redis.Redis.from_url(s.redis_url),
            pid=os.getpid(),
        )
    return _context


def reset_context() -> None:
    global _context  # noqa: PLW0603
    if _context is not None and _context.pid == os.getpid():
        _context.close()
    _context = None
