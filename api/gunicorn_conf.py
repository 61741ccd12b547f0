"""Gunicorn hooks for `sous api` (loaded by gunicorn as python:api.gunicorn_conf).

With several workers, Prometheus metrics live in PROMETHEUS_MULTIPROC_DIR (one file per
process); a worker that exits is marked dead so its live gauges (open SSE streams) drop out.
"""

from __future__ import annotations

import os
import shutil
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # noqa: PLC0415

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """Removes the metrics directory `sous api` made for this run (not one the operator set)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(path).startswith("sous-api-metrics-"):
        shutil.rmtree(path, ignore_errors=True)
