"""The dispatcher's start-up self-check of LISTEN/NOTIFY (worker/dispatcher.py) on a real
Postgres: it passes when the LISTEN is in place, and when notifications do not arrive (as through
PgBouncer in transaction mode, here: no LISTEN) it warns `dispatch_notify_unavailable`."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from core.settings import Settings
from worker.dispatcher import Dispatcher, LeaderConnection


def dispatcher(engine: sa.Engine, database_url: str, **settings: object) -> Dispatcher:
    s = Settings(database_url=database_url, box_id="probe-box", **settings)  # type: ignore[arg-type]
    runner = SimpleNamespace(settings=s, engine=engine)
    return Dispatcher(runner, fleet=None, database_url=database_url)  # type: ignore[arg-type]


def test_probe_passes_when_the_listen_is_in_place(engine: sa.Engine, database_url: str) -> None:
    leader = LeaderConnection(database_url, "probe-box")
    try:
        assert leader.try_acquire(listen=True)
        assert dispatcher(engine, database_url)._notifications_work(leader)
    finally:
        leader.close()


def test_missing_notifications_are_detected_and_logged(
    engine: sa.Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    leader = LeaderConnection(database_url, "probe-box")
    try:
        assert leader.try_acquire(listen=False)  # what a transaction pooler does to a LISTEN
        with caplog.at_level(logging.WARNING, logger="worker.dispatcher"):
            assert not dispatcher(engine, database_url)._notifications_work(leader)
        assert [r.message for r in caplog.records] == ["dispatch_notify_unavailable"]
    finally:
        leader.close()


def test_queue_listen_false_skips_listen_and_probe(engine: sa.Engine, database_url: str) -> None:
    leader = LeaderConnection(database_url, "probe-box")
    try:
        assert leader.try_acquire(listen=False)
        d = dispatcher(engine, database_url, queue_listen=False)
        assert not d._notifications_work(leader)
        assert leader.wait(0.2) == 0
    finally:
        leader.close()
