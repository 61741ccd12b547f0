"""sous api: the HTTP API under gunicorn with uvicorn workers (API_HOST:API_PORT, API_WORKERS).

The app is named by string, so this process never imports api/: gunicorn loads it in each
worker, and each worker builds its own engine, Redis client and event hub after the fork.
Extra arguments go to gunicorn as they are.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from core.settings import Settings

ACCEPTS_EXTRA = True
APP = "api.app:create_app()"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (default: API_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default: API_PORT)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: API_WORKERS)")


def gunicorn_argv(settings: Settings, args: argparse.Namespace) -> list[str]:
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        APP,
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--bind",
        bind,
        "--workers",
        str(args.workers or settings.api_workers),
        # SSE streams stay open; the uvicorn worker heartbeats independently of requests.
        "--timeout",
        "60",
        "--graceful-timeout",
        "20",
        "--keep-alive",
        "5",
        "--config",
        "python:api.gunicorn_conf",
        *getattr(args, "extra", []),
    ]


def run(args: argparse.Namespace) -> int:
    # Check the configuration here, once, with a message naming every problem, rather than
    # in each gunicorn worker.
    settings = Settings.load(needs=("database", "redis", "api"))
    argv = gunicorn_argv(settings, args)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The workers' metrics are summed from files here; a fresh directory per start, as
        # prometheus-client asks, so counters of a previous run do not leak in.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sous-api-metrics-")
    os.execv(argv[0], argv)  # noqa: S606 - replace this process: signals go straight to gunicorn
    return 0  # not reached
