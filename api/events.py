"""Live job events: one LISTEN connection per API process, fanned out to SSE subscribers.

The menu_extraction_jobs trigger NOTIFYs {id, status, user_id, confidence} on every insert
and status change. A single psycopg connection per gunicorn worker LISTENs (started with the
first subscriber, reconnecting after errors) and hands each notification to the queues of
that user's subscribers only, so a client never sees another user's jobs and a thousand open
streams cost one database connection, not a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from core.db import libpq_url
from core.logging import log_text

log = logging.getLogger(__name__)

CHANNEL = "menu_extraction_jobs"
QUEUE_SIZE = 256  # a subscriber that falls this far behind loses events, not the process


class EventsUnavailable(Exception):
    pass


class EventHub:
    def __init__(self, database_url: str, reconnect_seconds: float = 1.0) -> None:
        self.database_url = libpq_url(database_url)
        self.reconnect_seconds = reconnect_seconds
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def subscribe(
        self, user_id: str, wait_seconds: float = 10.0
    ) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.setdefault(user_id, set()).add(queue)
        try:
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._listen(), name="sous-event-hub")
            try:
                await asyncio.wait_for(self._ready.wait(), wait_seconds)
            except TimeoutError:
                raise EventsUnavailable("cannot LISTEN for job events: the database is unreachable") from None
            yield queue
        finally:
            subs = self._subscribers.get(user_id)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del self._subscribers[user_id]

    def _dispatch(self, payload: str) -> None:
        try:
            event = json.loads(payload)
        except json.JSONDecodeError:
            log.warning("bad_notify_payload", extra={"payload": log_text(payload)})
            return
        for queue in list(self._subscribers.get(str(event.get("user_id")), ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("sse_subscriber_behind", extra={"user_id": event.get("user_id")})

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, application_name="sous-api-events"
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    log.info("event_hub_listening")
                    async for notify in conn.notifies():
                        self._dispatch(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any connection failure: reconnect, never die
                log.warning("event_hub_reconnect", extra={"error": log_text(exc)})
            self._ready.clear()
            await asyncio.sleep(self.reconnect_seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
