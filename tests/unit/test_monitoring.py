"""The `monitoring` profile's files, checked by Prometheus's and Alertmanager's own tools
(Debian's `prometheus` and `prometheus-alertmanager`: promtool, amtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "images" / "monitoring"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
# The panels the vLLM row must have, and the vLLM metric families (vLLM's documented names;
# `or` covers the older name of the same number) each may use.
VLLM_PANELS = {
    "vLLM tokens per second": {"vllm:generation_tokens_total", "vllm:prompt_tokens_total"},
    "vLLM requests running and waiting": {"vllm:num_requests_running", "vllm:num_requests_waiting"},
    "vLLM KV-cache use": {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"},
    "vLLM time to first token p50 / p95": {"vllm:time_to_first_token_seconds_bucket"},
    "vLLM inter-token latency p50 / p95": {
        "vllm:inter_token_latency_seconds_bucket",
        "vllm:time_per_output_token_seconds_bucket",
    },
}


def run(*argv: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    result = run(PROMTOOL, "test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_rule_is_tested_firing_and_quiet() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    cases = [c for t in tests["tests"] for c in t.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert names and names == firing == quiet, (names, firing, quiet)


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    """The bundled config as compose mounts it: the rules next to it, the key file in place."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    key = tmp_path / "service_api_key"
    key.write_text("k" * 32)
    for job in config["scrape_configs"]:
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(key)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run(PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["sous-vllm"]["static_configs"][0]["targets"] == ["vllm:8000"]  # Prometheus scrapes vLLM


def _uncomment_examples(text: str) -> str:
    """The commented e-mail and Slack examples of alertmanager.yml, switched on."""
    keys = r"(smtp_\w+:|slack_api_url_file:|email_configs:|slack_configs:|  - to:|  - channel:|    \w+:)"
    return re.sub(rf"(?m)^(\s*)# ?{keys}", r"\1\2", text)


def test_alertmanager_config_and_its_commented_examples_pass_amtool(tmp_path: Path) -> None:
    result = run(AMTOOL, "check-config", str(MONITORING / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    receiver = next(r for r in config["receivers"] if r["name"] == config["route"]["receiver"])
    assert receiver["webhook_configs"][0]["send_resolved"] is True
    examples = _uncomment_examples((MONITORING / "alertmanager.yml").read_text())
    (tmp_path / "alertmanager.yml").write_text(examples)
    result = run(AMTOOL, "check-config", str(tmp_path / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    on = yaml.safe_load(examples)
    receiver = next(r for r in on["receivers"] if r["name"] == on["route"]["receiver"])
    assert set(receiver) == {"name", "webhook_configs", "email_configs", "slack_configs"}
    assert on["global"]["smtp_smarthost"] and on["global"]["slack_api_url_file"]


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MONITORING / "grafana/dashboards/sous.json").read_text())
    return data


def test_grafana_has_the_vllm_panels_on_vllm_s_metric_names() -> None:
    panels = {p["title"]: p for p in _dashboard()["panels"]}
    for title, families in VLLM_PANELS.items():
        assert title in panels, f"no panel {title!r}"
        exprs = [t["expr"] for t in panels[title]["targets"]]
        used = {m for e in exprs for m in re.findall(r"vllm:[a-z_]+", e)}
        assert used == families, (title, used)


def test_every_panel_expression_parses(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule: a typo fails here, not on a screen."""
    exprs = [t["expr"] for p in _dashboard()["panels"] for t in p["targets"]]
    rules = {
        "groups": [
            {
                "name": "panels",
                "rules": [{"record": f"panel:expr_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    result = run(PROMTOOL, "check", "rules", str(tmp_path / "panels.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


@pytest.mark.parametrize("package", ["prometheus", "prometheus-alertmanager"])
def test_system_deps_installs_the_monitoring_tools(package: str) -> None:
    assert f"missing+=({package})" in (ROOT / "scripts/system-deps.sh").read_text()
