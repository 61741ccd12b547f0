"""sous demo: load demo ingredient rows and a rendered menu photo, and wait for them.

The menu goes in as the demo user's submission (the same quota-checked path as the API) and
onto the RQ `menus` queue; the ingredient rows go into the queue table, where the dispatcher's
NOTIFY picks them up.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from importlib import resources
from typing import Any

import redis
import sqlalchemy as sa

from cli.common import load_settings
from core import jobs, menu_jobs, queue
from core.db import create_engine, transaction
from core.fetch import ImageData
from core.settings import Settings

# A fixed demo user, so `sous token --user` can mint a JWT that sees the demo menu job.
DEMO_USER = uuid.UUID("00000000-0000-4000-8000-00000000de30")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the demo to finish")
    parser.add_argument("--no-menu", action="store_true", help="only the ingredient rows")
    parser.add_argument("--json", action="store_true", help="print one JSON summary instead of text")


def demo_rows() -> list[dict[str, str]]:
    text = resources.files("devtools.demo").joinpath("ingredients.txt").read_text(encoding="utf-8")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    # Alternate sources so every rollout stage has rows to work on.
    return [{"raw_name": n, "source": "scraper" if i % 2 == 0 else "recipe"} for i, n in enumerate(names)]


def submit_menu(engine: sa.Engine, settings: Settings) -> str:
    image = resources.files("devtools.demo").joinpath("menu.jpg").read_bytes()
    sub = menu_jobs.submit(engine, DEMO_USER, ImageData(image, "image/jpeg", None), force=True)
    job_id = str(sub.job["id"])
    if sub.created and settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        jobs.enqueue_menu_job(client, job_id)
        client.close()
    return job_id


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=1)
    with transaction(engine) as conn:
        ids = queue.insert_rows(conn, demo_rows())
    say = (lambda text: None) if args.json else print
    say(f"queued {len(ids)} demo ingredient rows (ids {ids[0]}..{ids[-1]})")
    menu_id = None if args.no_menu else submit_menu(engine, settings)
    if menu_id:
        say(f"submitted the demo menu as job {menu_id} (user {DEMO_USER})")
    deadline = time.monotonic() + args.wait
    job: dict[str, Any] | None = None
    while True:
        with engine.connect() as conn:
            counts = queue.status_counts(conn, ids)
        job = menu_jobs.get_user_job(engine, DEMO_USER, uuid.UUID(menu_id)) if menu_id else None
        live = counts.get("pending", 0) + counts.get("processing", 0)
        menu_live = job is not None and job["status"] in ("queued", "processing")
        if (live == 0 and not menu_live) or time.monotonic() >= deadline:
            break
        time.sleep(1)
    say("demo rows by status: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    summary: dict[str, Any] = {"row_ids": ids, "rows_by_status": counts, "menu_job": None}
    if job is not None:
        categories = ((job.get("result") or {}).get("menu") or {}).get("categories", [])
        items = sum(len(c.get("items", [])) for c in categories)
        error = f", error: {job['error_message']}" if job["error_message"] else ""
        say(f"demo menu: {job['status']}, {len(categories)} categories, {items} items{error}")
        summary["menu_job"] = {
            "id": menu_id,
            "user_id": str(DEMO_USER),
            "status": job["status"],
            "categories": len(categories),
            "items": items,
            "error": job["error_message"],
        }
    if args.json:
        print(json.dumps(summary))
    engine.dispose()
    return 0
