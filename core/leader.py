"""The dispatcher's leadership connection: a session-level advisory lock, LISTEN and a probe.

The lock is held by the connection itself (released by the server when it closes), so these
run on a dedicated AUTOCOMMIT connection, never inside a pooled transaction.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from core import db


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (Python's hash() differs per process)."""
    raw = hashlib.sha256(name.encode()).digest()[:8]
    return int.from_bytes(raw, "big", signed=True)


def try_lock(conn: sa.Connection, key: int) -> bool:
    """Takes the session advisory lock `key` if free; True when this connection holds it."""
    return bool(db.fetch_value(conn, "dispatch_try_lock", {"key": key}))


def listen(conn: sa.Connection) -> None:
    """Subscribes this connection to the queue's insert notifications."""
    db.execute(conn, "dispatch_listen")


def ping(conn: sa.Connection) -> None:
    """Raises DatabaseError when the connection (and with it the lock) is gone."""
    db.fetch_value(conn, "dispatch_ping")


def notify_probe(conn: sa.Connection, payload: str) -> None:
    """Sends a notification on the queue's channel (the start-up self-check of LISTEN)."""
    db.execute(conn, "dispatch_notify_probe", {"payload": payload})
