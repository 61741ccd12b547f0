"""Menu jobs on the worker side: the task in-process, fencing, the lost-job sweep, and real RQ
workers reclaiming a job whose worker died."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from redis import Redis

from core import jobs, menu_jobs
from core.db import libpq_url
from core.errors import DatabaseError
from core.fetch import ImageData
from tests.api_support import ROOT, api_env, api_settings, png, png_bomb
from tests.menus import render_menu
from worker import menu_task
from worker.context import get_context, reset_context


@pytest.fixture
def ctx(database_url: str, redis_url: str, engine: sa.Engine) -> Iterator[object]:
    reset_context()
    context = get_context(api_settings(database_url, redis_url, queue_lease_seconds=60))
    yield context
    reset_context()


def submit(engine: sa.Engine, content: bytes, user: uuid.UUID | None = None) -> str:
    image = ImageData(content, "image/jpeg", None)
    return str(menu_jobs.submit(engine, user or uuid.uuid4(), image).job["id"])


def job_row(engine: sa.Engine, job_id: str) -> dict[str, object]:
    with engine.begin() as conn:
        row = conn.execute(sa.text("SELECT * FROM menu_extraction_jobs WHERE id = :id"), {"id": job_id})
        return dict(row.mappings().one())


def test_a_rendered_menu_completes_with_result_and_notifications(ctx, engine, database_url) -> None:
    menu = render_menu(11)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as listener:
        listener.execute("LISTEN menu_extraction_jobs")
        job_id = submit(engine, menu.image)
        outcome = menu_task.run_menu_job(job_id)
        events = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=3)]
    assert outcome["status"] == "completed" and outcome["provider"] == "rules"
    assert [e["status"] for e in events] == ["queued", "processing", "completed"]
    assert all(e["id"] == job_id for e in events)
    row = job_row(engine, job_id)
    assert row["status"] == "completed" and row["attempt_count"] == 1
    result = row["result"]
    assert isinstance(result, dict) and result["currency"] == menu.currency
    found = {c["name"] for c in result["menu"]["categories"]}
    # Every heading is found; OCR may turn at most one item whose price it lost into a heading
    # (item accuracy itself is measured by tests/unit/test_menu_parser_rendered.py).
    assert set(menu.categories) <= found and len(found - set(menu.categories)) <= 1, found
    assert row["processing_time"] > 0 and 0 < row["confidence"] <= 1
    assert row["token_usage"]["provider"] == "rules"
    assert row["superfluous_text"] == result["superfluousText"]
    assert events[-1]["confidence"] == pytest.approx(row["confidence"])


def test_bad_images_fail_with_a_clear_error(ctx, engine) -> None:
    bomb = submit(engine, png_bomb())
    junk = submit(engine, b"\xff\xd8\xff" + b"not really a jpeg" * 10)
    assert menu_task.run_menu_job(bomb)["status"] == "failed"
    assert menu_task.run_menu_job(junk)["status"] == "failed"
    assert "decompression bomb refused" in str(job_row(engine, bomb)["error_message"])
    assert "not a readable image" in str(job_row(engine, junk)["error_message"])


def test_writes_are_fenced_on_the_attempt(ctx, engine) -> None:
    job_id = submit(engine, png(1))
    first = menu_jobs.claim(engine, job_id, resolver="a", lease_seconds=0)
    assert first is not None
    time.sleep(0.05)
    second = menu_jobs.claim(engine, job_id, resolver="b", lease_seconds=60)
    assert second is not None and second.attempt == first.attempt + 1
    late = {"result": {}, "confidence": None, "token_usage": None, "processing_ms": 1}
    assert menu_jobs.complete(engine, first, **late) is False  # nothing written: the lease was lost
    assert menu_jobs.extend_lease(engine, first, 60) is False
    assert menu_jobs.fail(engine, first, "late", 1) is False
    assert job_row(engine, job_id)["status"] == "processing"  # the second claim's job, untouched
    assert menu_jobs.claim(engine, job_id, resolver="c", lease_seconds=60) is None  # lease is live
    assert menu_task.run_menu_job(job_id)["status"] == "skipped"


def test_transient_database_errors_are_retried(monkeypatch) -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise DatabaseError("connection reset")
        return "ok"

    monkeypatch.setattr(menu_task.time, "sleep", lambda s: None)
    assert menu_task.with_retries("x", flaky) == "ok" and len(calls) == 3
    with pytest.raises(DatabaseError):
        menu_task.with_retries("x", lambda: (_ for _ in ()).throw(DatabaseError("down")))


def test_sweep_reenqueues_lost_jobs_and_gives_up_after_max_attempts(ctx, engine, redis_url) -> None:
    redis = Redis.from_url(redis_url)
    young = submit(engine, png(2))
    old = submit(engine, png(3))
    expired = submit(engine, png(4))
    exhausted = submit(engine, png(5))
    # The row's rq_job_id is core.jobs' first-run id (given by Python, not built in SQL).
    assert job_row(engine, young)["rq_job_id"] == jobs.menu_rq_id(young) == f"menu-{young}"
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE menu_extraction_jobs SET created_at = now() - interval '5 min' WHERE id = :i"),
            {"i": old},
        )
    menu_jobs.claim(engine, expired, resolver="dead", lease_seconds=0)
    for _ in range(3):
        menu_jobs.claim(engine, exhausted, resolver="dead", lease_seconds=0)
    time.sleep(0.05)
    assert menu_task.reenqueue_lost_menu_jobs(ctx) == 2
    queued = {x.decode() for x in redis.lrange("rq:queue:menus", 0, -1)}
    assert queued == {f"menu-{old}", f"menu-{expired}-a1"}
    assert young not in " ".join(queued)
    assert job_row(engine, exhausted)["status"] == "failed"
    assert "worker lost 3 times" in str(job_row(engine, exhausted)["error_message"])
    assert menu_task.reenqueue_lost_menu_jobs(ctx) == 0  # still in RQ: not enqueued twice


def test_killed_worker_job_is_reclaimed_by_lease(database_url, redis_url, engine) -> None:
    """A real RQ worker is killed mid-job; after the lease expires the sweep re-enqueues the job
    and another real worker completes it."""
    env = api_env(database_url, redis_url, QUEUE_LEASE_SECONDS="2")
    job_id = submit(engine, render_menu(12).image)
    stall = (
        "import time, model.ocr as o; real = o.ocr_image;"
        "o.ocr_image = lambda *a, **k: (time.sleep(60), real(*a, **k))[1];"
        "import worker.menu_task as t; t.ocr_image = o.ocr_image;"
        f"t.run_menu_job({job_id!r})"
    )
    doomed = subprocess.Popen([sys.executable, "-c", stall], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while job_row(engine, job_id)["status"] != "processing":
            assert time.monotonic() < deadline and doomed.poll() is None
            time.sleep(0.1)
        doomed.kill()  # SIGKILL mid-job: no cleanup runs
        doomed.wait(10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    assert job_row(engine, job_id)["status"] == "processing"
    time.sleep(2.2)
    reset_context()
    ctx = get_context(api_settings(database_url, redis_url))
    try:
        assert menu_task.reenqueue_lost_menu_jobs(ctx) == 1
    finally:
        reset_context()
    worker = subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url, "menus"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
    row = job_row(engine, job_id)
    assert row["status"] == "completed" and row["attempt_count"] == 2
