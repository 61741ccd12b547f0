"""The Grafana dashboard's vLLM panels return data: Debian's `prometheus` scrapes the model
server's /metrics the way the bundled `sous-vllm` job does, while the provider chain sends it
requests, and every panel's expression is queried. The model server is the simulator, which
exports vLLM's metric names (labelled simulated) except the KV-cache gauge."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from core.settings import Settings
from devtools.services import free_port
from devtools.sim_process import SimProcess
from model.ingredients import IngredientQuery, IngredientResolver
from tests.api_support import ROOT, stop, wait_http

MONITORING = ROOT / "images" / "monitoring"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
# vLLM's KV-cache gauge: real vLLM exports it; the simulator has no KV cache to report.
NOT_SIMULATED = "vLLM KV-cache use"


@pytest.fixture
def sim() -> Iterator[SimProcess]:
    with SimProcess(profile="instant") as proc:
        yield proc


QUERIES = [IngredientQuery.of(t) for t in ("2 cups flour", "3 large eggs", "1 tsp salt")]


def _resolver(sim: SimProcess) -> IngredientResolver:
    settings = Settings(
        local_llm_enabled=True,
        local_llm_base_url=sim.base_url,
        llm_providers="local",
        local_llm_timeout_ms=120_000,
    )
    return IngredientResolver.from_settings(settings)


def _load(resolver: IngredientResolver, seconds: float) -> None:
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        resolver.resolve(QUERIES)
        time.sleep(0.05)


def _query(port: int, expr: str) -> dict[str, Any]:
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}, timeout=5)
    body: dict[str, Any] = r.json()
    assert body["status"] == "success", (expr, body)
    return body


def test_every_vllm_panel_returns_series(sim: SimProcess, tmp_path: Path) -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "sous-vllm")
    job["static_configs"][0]["targets"] = [urlsplit(sim.url).netloc]
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [job]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        # The simulator's first answer loads the rules' vocabularies (seconds): before the window.
        resolver = _resolver(sim)
        resolver.resolve(QUERIES)
        wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=30, proc=prometheus)
        load = threading.Thread(target=_load, args=(resolver, 5), daemon=True)
        load.start()
        load.join(timeout=30)
        dashboard = json.loads((MONITORING / "grafana/dashboards/sous.json").read_text())
        panels = [p for p in dashboard["panels"] if p["title"].startswith("vLLM")]
        assert len(panels) == 5
        for panel in panels:
            for target in panel["targets"]:
                result = _query(port, target["expr"])["data"]["result"]
                if panel["title"] == NOT_SIMULATED:
                    assert result == [], result
                    continue
                assert result, f"{panel['title']}: {target['expr']} returned nothing"
                value = float(result[0]["value"][1])
                assert value == value and value >= 0, (panel["title"], target["expr"], result)  # not NaN
        tokens = _query(port, "sum(rate(vllm:generation_tokens_total[1m]))")["data"]["result"]
        assert float(tokens[0]["value"][1]) > 0
    finally:
        stop(prometheus)
