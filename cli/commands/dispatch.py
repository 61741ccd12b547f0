"""sous dispatch: the dispatcher (one active per BOX_ID; a second one waits as standby)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from core.logging import configure_logging
from model.ingredients import IngredientResolver
from worker.context import get_context
from worker.cycle import CycleRunner
from worker.dispatcher import Dispatcher
from worker.fleet import RqFleet

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # everything comes from the environment (QUEUE_*, WORKER_INTERVAL_SECONDS, BOX_ID)


def run(args: argparse.Namespace) -> int:
    ctx = get_context()
    configure_logging(ctx.settings.log_level)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    resolver = IngredientResolver.from_settings(ctx.settings)
    fleet = RqFleet(ctx.redis, ctx.settings)
    runner = CycleRunner(ctx.engine, ctx.settings, resolver, fleet, ctx)
    assert ctx.settings.database_url is not None
    session_url = ctx.settings.database_listen_url
    if not session_url and ctx.settings.queue_listen:
        log.warning(
            "dispatch_listen_url_missing",
            extra={
                "hint": "DATABASE_LISTEN_URL is not set: LISTEN uses DATABASE_URL; through a "
                "transaction-mode pooler (Supabase 6543) no notification arrives and the sweep "
                "carries the load (set it to the direct/session URL, port 5432)"
            },
        )
    Dispatcher(runner, fleet, session_url or ctx.settings.database_url).run(stop)
    return 0
