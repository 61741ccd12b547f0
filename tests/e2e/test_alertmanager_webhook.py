"""An alert reaches a person: `sous api` on real Postgres and Redis, Debian's `prometheus`
scraping it with the bundled rules, Debian's `prometheus-alertmanager` with the bundled
routing, and a webhook receiver (the person's end: an HTTP server in this test).

The files are the repository's (images/monitoring/prometheus.yml, alerts.yml,
alertmanager.yml), changed only where a test must: the targets' addresses, the webhook URL,
and every wait (scrape and evaluation 1 s, the rules' `for` and the route's group_wait 1 s;
promtool's tests check the real durations). The alert is forced the way it happens on a box:
a pending row older than ALERT_OLDEST_PENDING_SECONDS.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from core.db import libpq_url
from devtools.services import free_port
from tests.api_support import ROOT, SERVICE_KEY, api_env, stop, wait_http

MONITORING = ROOT / "images" / "monitoring"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


class Webhook:
    """Records each notification Alertmanager posts."""

    def __init__(self) -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sous-alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                note = self.received.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(note)
            if predicate(note):
                return note
        raise AssertionError(f"no matching notification within {timeout}s; got {seen}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_api(database_url: str, redis_url: str, **extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = api_env(
        database_url,
        redis_url,
        API_PORT=str(port),
        API_WORKERS="1",
        LOG_LEVEL="INFO",
        ALERT_OLDEST_PENDING_SECONDS="1",
        # Only the forced condition: no RQ worker runs in this test.
        ALERT_MIN_LIVE_WORKERS="0",
        OBS_SNAPSHOT_SECONDS="1",
        **extra,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    api = subprocess.Popen(
        [str(ROOT / ".venv/bin/sous"), "api"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=api)
    return api, port


def prometheus_config(tmp: Path, api_port: int, am_port: int, key_file: Path | None) -> Path:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    rules = (MONITORING / "alerts.yml").read_text()
    (tmp / "alerts.yml").write_text(re.sub(r"(?m)^(\s+for:) .*$", r"\1 1s", rules))
    config["rule_files"] = [str(tmp / "alerts.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "sous-api")
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{api_port}"]
    if key_file is None:
        del job["authorization"]  # a loopback scrape, allowed without the key
    else:
        job["authorization"]["credentials_file"] = str(key_file)
    config["scrape_configs"] = [job]  # no model server in this test
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_config(tmp: Path, webhook_url: str) -> Path:
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    config["receivers"][0]["webhook_configs"][0]["url"] = webhook_url
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def old_pending_row(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh database with one scraper row pending for an hour: sous should have claimed it."""
    name = f"sous_alerting_{uuid.uuid4().hex[:8]}"
    base = libpq_url(pg_admin_url).rsplit("/", 1)[0]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    database_url = f"{base}/{name}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingredient_match_queue (source, raw_name, cleaned_name, status, created_at)"
            " VALUES ('scraper', '2 cups flour', 'flour', 'pending', now() - interval '1 hour')"
        )
    try:
        yield database_url
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("with_key", [True, False], ids=["bearer-service-key", "loopback"])
def test_a_forced_alert_reaches_the_webhook(
    old_pending_row: str, redis_server_url: str, tmp_path: Path, with_key: bool
) -> None:
    redis_url = redis_server_url.rsplit("/", 1)[0] + "/6"
    # With the key, the API admits no client network: only the bearer key opens /metrics.
    extra = {"METRICS_ALLOWED_NETWORKS": "192.0.2.1/32"} if with_key else {}
    api, api_port = start_api(old_pending_row, redis_url, **extra)
    webhook = Webhook()
    am_port, prom_port = free_port(), free_port()
    key_file = tmp_path / "service_api_key"
    key_file.write_text(SERVICE_KEY)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={alertmanager_config(tmp_path, webhook.url)}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",  # one instance: no gossip port
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "alertmanager.log").open("wb"),
            )
        )
        prom_config = prometheus_config(tmp_path, api_port, am_port, key_file if with_key else None)
        procs.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "prometheus.log").open("wb"),
            )
        )
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", timeout=30, proc=procs[0])
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", timeout=30, proc=procs[1])

        note = webhook.wait_for(
            lambda n: any(
                a["status"] == "firing" and a["labels"].get("alert") == "oldest_pending" for a in n["alerts"]
            ),
            timeout=60,
        )
        alert = next(a for a in note["alerts"] if a["labels"].get("alert") == "oldest_pending")
        assert note["path"] == "/sous-alerts" and note["receiver"] == "operator"
        assert alert["labels"]["alertname"] == "SousQueueAlert" and alert["labels"]["severity"] == "page"
        assert alert["annotations"]["summary"] == "sous alert oldest_pending has held for 2 minutes"
        # The scrape that carried it was the API's /metrics, through the bundled auth when set.
        targets = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/targets", timeout=5).json()
        (target,) = targets["data"]["activeTargets"]
        assert target["labels"]["job"] == "sous-api" and target["health"] == "up", target
    finally:
        for proc in procs:
            stop(proc)
        webhook.close()
        stop(api)
