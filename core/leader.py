"""The dispatcher's leadership connections: a transaction-level advisory lock, LISTEN and a probe.

The lock is held by a transaction the leader keeps open on a dedicated connection (the server
releases it when that transaction or connection ends; through a transaction-mode pooler the open
transaction pins one server connection, so the lock cannot leak onto a pooled one). LISTEN runs
on a second, AUTOCOMMIT connection: notifications arrive between transactions.
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
    """Takes the transaction-level advisory lock `key` if free, inside the connection's open
    transaction (which must stay open while leading); True when this connection holds it."""
    return bool(db.fetch_value(conn, "dispatch_try_lock", {"key": key}))


def listen(conn: sa.Connection) -> None:
    """Subscribes this connection to the queue's insert notifications."""
    db.execute(conn, "dispatch_listen")


def ping(conn: sa.Connection) -> None:
    """Raises DatabaseError when the lock's connection (and with it the lock) is gone."""
    db.fetch_value(conn, "dispatch_ping")


def notify_probe(conn: sa.Connection, payload: str) -> None:
    """Sends a notification on the queue's channel (the start-up self-check of LISTEN)."""
    db.execute(conn, "dispatch_notify_probe", {"payload": payload})
