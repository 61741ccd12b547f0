"""The dispatcher: one active per box, woken by LISTEN/NOTIFY, with a periodic sweep.

Leadership is a Postgres advisory lock keyed on BOX_ID, held by an open transaction on a
dedicated connection (see LeaderConnection). A second dispatcher on the same box polls for the
lock and takes over within about a second when the first one's connection dies (the server ends
its transaction and releases the lock, so a SIGKILLed or partitioned leader cannot keep it).
Boxes with different BOX_IDs each get their own lock and dispatch side by side (claims use SKIP
LOCKED).

Notifications are an accelerator, never a requirement. The lock and LISTEN use the session URL,
DATABASE_LISTEN_URL; without it they use DATABASE_URL (a warning at start-up says so). With
QUEUE_LISTEN=false, or when the start-up self-check's own NOTIFY does not come back within
PROBE_TIMEOUT_SECONDS (`dispatch_notify_unavailable`: PgBouncer in transaction mode, where LISTEN
does not pass), the dispatcher relies on the sweep and runs it every
min(WORKER_INTERVAL_SECONDS, NO_NOTIFY_SWEEP_SECONDS).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import sqlalchemy as sa

from core import db, leader
from core.db import create_engine

from .cycle import CycleReport, CycleRunner
from .fleet import Fleet

log = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 1.0
BACKPRESSURE_POLL_SECONDS = 0.5
ERROR_BACKOFF_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 2.0
NO_NOTIFY_SWEEP_SECONDS = 5.0


def lock_name(box_id: str) -> str:
    return f"sous:dispatcher:{box_id}"


class LeaderConnection:
    """Leadership and notifications, on two dedicated connections to the session URL
    (DATABASE_LISTEN_URL, else DATABASE_URL).

    The lock is a transaction-level advisory lock held by a transaction kept open for the whole
    leadership: the server drops it with the connection (a SIGKILLed leader loses it at once), and
    through a transaction-mode pooler the open transaction pins one server connection, so the lock
    can neither leak onto a pooled connection nor be shared. LISTEN needs a connection that sits
    outside transactions (notifications arrive between them): the second one.
    """

    def __init__(self, database_url: str, box_id: str) -> None:
        self.key = leader.advisory_lock_key(lock_name(box_id))
        self.engine = create_engine(database_url, pool_size=2, app_name=f"sous-dispatch-{box_id}")
        self.conn: sa.Connection | None = None  # holds the lock (an open transaction)
        self.listen_conn: sa.Connection | None = None

    def try_acquire(self, listen: bool = True) -> bool:
        if self.conn is None:
            self.conn = self.engine.connect()
        if leader.try_lock(self.conn, self.key):
            if listen:
                self.listen_conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                leader.listen(self.listen_conn)
            return True
        self.conn.rollback()
        return False

    def probe(self, engine: sa.Engine, box_id: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
        """NOTIFY from another connection; True when it (or any notification) arrives here."""
        with db.transaction(engine) as conn:
            leader.notify_probe(conn, json.dumps({"probe": box_id}))
        return self.wait(timeout) > 0

    def check(self) -> None:
        """Raises DatabaseError when the lock's connection (and with it the lock) is gone."""
        assert self.conn is not None
        leader.ping(self.conn)

    def wait(self, timeout: float) -> int:
        """Waits up to `timeout` seconds for a notification; returns how many arrived."""
        if self.listen_conn is None:
            time.sleep(max(timeout, 0.0))
            return 0
        raw: Any = self.listen_conn.connection.driver_connection
        got = sum(1 for _ in raw.notifies(timeout=max(timeout, 0.0), stop_after=1))
        if got:
            got += sum(1 for _ in raw.notifies(timeout=0.0))
        return got

    def close(self) -> None:
        for conn in (self.listen_conn, self.conn):
            if conn is not None:
                try:
                    conn.invalidate()  # never back into a pool: closing ends the lock's transaction
                    conn.close()
                except Exception:
                    log.debug("leader connection close failed", exc_info=True)
        self.conn = self.listen_conn = None
        self.engine.dispose()


class Dispatcher:
    def __init__(self, runner: CycleRunner, fleet: Fleet, database_url: str) -> None:
        self.runner = runner
        self.fleet = fleet
        self.settings = runner.settings
        self.database_url = database_url
        self.cycles = 0

    def run(self, stop: threading.Event) -> None:
        """Waits for leadership, leads until stopped or the lock connection dies, repeats."""
        box = self.settings.box_id
        while not stop.is_set():
            leader = LeaderConnection(self.database_url, box)
            try:
                if not self._acquire(leader, stop):
                    return
                log.info("dispatch_leader", extra={"box_id": box, "lock_key": leader.key})
                self._lead(leader, stop)
            except Exception:
                log.exception("dispatch_leader_lost", extra={"box_id": box})
                stop.wait(ERROR_BACKOFF_SECONDS)
            finally:
                leader.close()

    def _acquire(self, leader: LeaderConnection, stop: threading.Event) -> bool:
        waiting_logged = False
        while not stop.is_set():
            try:
                if leader.try_acquire(listen=self.settings.queue_listen):
                    return True
            except Exception:
                log.warning("dispatch_lock_error", exc_info=True)
                leader.close()
            if not waiting_logged:
                log.info("dispatch_standby", extra={"box_id": self.settings.box_id})
                waiting_logged = True
            stop.wait(LOCK_POLL_SECONDS)
        return False

    def _notifications_work(self, leader: LeaderConnection) -> bool:
        if not self.settings.queue_listen:
            return False
        if leader.probe(self.runner.engine, self.settings.box_id):
            return True
        log.warning(
            "dispatch_notify_unavailable",
            extra={
                "box_id": self.settings.box_id,
                "probe_seconds": PROBE_TIMEOUT_SECONDS,
                "hint": "a transaction-mode pooler? set DATABASE_LISTEN_URL to a session/direct URL "
                "(or QUEUE_LISTEN=false); the sweep takes over",
            },
        )
        return False

    def _lead(self, leader: LeaderConnection, stop: threading.Event) -> None:
        listening = self._notifications_work(leader)
        interval = self.settings.worker_interval_seconds
        if not listening:
            interval = min(interval, NO_NOTIFY_SWEEP_SECONDS)
        log.info("dispatch_sweep", extra={"listening": listening, "sweep_seconds": interval})
        window = self.settings.queue_batch_window_ms / 1000
        next_sweep = time.monotonic() + interval
        trigger = "startup"
        while not stop.is_set():
            report = self._cycle(trigger)
            leader.check()
            if report is None:  # Redis or Postgres trouble: retry after the back-off
                trigger = "retry"
                continue
            if report.backlog:
                trigger = "backlog"
                continue
            if report.fleet_full:
                trigger = self._wait_for_capacity(leader, stop, next_sweep)
            else:
                trigger = self._wait_for_work(leader, stop, next_sweep, window)
            if trigger == "sweep":
                next_sweep = time.monotonic() + interval
        # Stopping while still the leader: rows claimed for chunks no worker started go back now.
        try:
            self.fleet.release_unstarted(self.runner.engine)
        except Exception:
            log.warning("dispatch_release_error", exc_info=True)  # they come back by lease

    def _cycle(self, trigger: str) -> CycleReport | None:
        try:
            report = self.runner.run(trigger)
        except Exception:
            # Redis or Postgres away: nothing was lost (claims are leased); try again soon.
            log.exception("dispatch_cycle_error", extra={"trigger": trigger})
            time.sleep(ERROR_BACKOFF_SECONDS)
            return None
        self.cycles += 1
        return report

    def _wait_for_capacity(self, leader: LeaderConnection, stop: threading.Event, next_sweep: float) -> str:
        """Rows wait while every worker is busy; poll the fleet (cheap) rather than cycling.
        The sweep still runs on time (expired leases, lost menu jobs) even with a full fleet."""
        while not stop.is_set():
            if time.monotonic() >= next_sweep:
                return "sweep"
            leader.wait(BACKPRESSURE_POLL_SECONDS)
            try:
                cap = self.fleet.capacity()
            except Exception:
                log.warning("dispatch_capacity_error", exc_info=True)
                stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if cap.rows is None or cap.rows > 0:
                return "capacity"
        return "stop"

    def _wait_for_work(
        self, leader: LeaderConnection, stop: threading.Event, next_sweep: float, window: float
    ) -> str:
        while not stop.is_set():
            remaining = next_sweep - time.monotonic()
            if remaining <= 0:
                return "sweep"
            if leader.wait(min(remaining, LOCK_POLL_SECONDS)):
                # Batch: rows of one import usually arrive in several statements; wait a
                # moment and take them in one claim.
                if window > 0:
                    stop.wait(window)
                    leader.wait(0.0)
                return "notify"
        return "stop"
