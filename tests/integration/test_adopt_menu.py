"""Menu jobs the old app writes into the adopted table: a row inserted through the `ocr_jobs`
view with only an image URL (no stored bytes) is OCRed and completed by sous's task, and an old
queued job without any image fails with a reason instead of crashing the worker."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import psycopg
import pytest

from core import migrate
from core.db import libpq_url
from tests import supabase_shape as shape
from tests.api_support import api_settings
from tests.menus import render_menu
from worker import menu_task
from worker.context import get_context, reset_context


@pytest.fixture
def menu_server() -> Iterator[tuple[str, bytes]]:
    menu = render_menu(5)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png" if menu.image[:4] == b"\x89PNG" else "image/jpeg")
            self.send_header("Content-Length", str(len(menu.image)))
            self.end_headers()
            self.wfile.write(menu.image)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/menu", menu.image
    finally:
        server.shutdown()


def test_old_app_jobs_in_the_adopted_table(
    fresh_db: str, redis_url: str, menu_server: tuple[str, bytes]
) -> None:
    shape.build(fresh_db, shape.SHAPES["uuid"])
    migrate.upgrade(fresh_db)
    url, _ = menu_server
    with psycopg.connect(libpq_url(fresh_db), autocommit=True) as conn:
        (new_id,) = conn.execute(  # the old writer, through the view under the old name
            "INSERT INTO ocr_jobs (user_id, image_url, restaurant_name) "
            "VALUES (%s, %s, 'Diner') RETURNING id",
            (shape.USER_A, url),
        ).fetchone()  # type: ignore[misc]
        (old_id,) = conn.execute(
            "SELECT id FROM menu_extraction_jobs WHERE status = 'queued' AND image_url IS NULL LIMIT 1"
        ).fetchone()  # type: ignore[misc]
    reset_context()
    get_context(api_settings(fresh_db, redis_url, menu_allow_private_hosts=True, queue_lease_seconds=60))
    try:
        assert menu_task.run_menu_job(str(new_id))["status"] == "completed"
        failed = menu_task.run_menu_job(str(old_id))
        assert failed["status"] == "failed" and "missing" in failed["error"]
    finally:
        reset_context()
    with psycopg.connect(libpq_url(fresh_db)) as conn:
        status, result, name = conn.execute(
            "SELECT status, result, restaurant_name FROM ocr_jobs WHERE id = %s", (new_id,)
        ).fetchone()  # type: ignore[misc]
    assert status == "completed" and name == "Diner" and result["menu"]["categories"]
