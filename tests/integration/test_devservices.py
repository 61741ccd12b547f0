"""The throwaway services `make dev` starts can be stopped by a later process (`make dev-down`),
which knows only their directory."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import redis

from devtools.services import RedisServer


def test_a_detached_redis_is_stopped_by_another_process_from_its_directory() -> None:
    base = Path(tempfile.mkdtemp(prefix="sous-devredis-"))
    try:
        started = RedisServer(base_dir=str(base))
        url = started.start(detach=True)
        assert redis.Redis.from_url(url).ping()

        # `make dev-down`: a new process, a new object, the same directory and port.
        RedisServer(port=started.port, base_dir=str(base)).stop()

        deadline = time.monotonic() + 10
        while started.proc is not None and started.proc.poll() is None:
            assert time.monotonic() < deadline, "redis-server still running after dev-down"
            time.sleep(0.05)
        assert not (base / "redis.pid").exists()
    finally:
        if started.proc is not None and started.proc.poll() is None:
            started.proc.kill()
        shutil.rmtree(base, ignore_errors=True)
