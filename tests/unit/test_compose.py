"""compose.yaml: valid against the Compose Specification, and every part of it real."""

from __future__ import annotations

import argparse
import configparser
import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import COMMANDS
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
APP_IMAGE_COMMANDS = {"sous", "supervisord"}
# Flags of `vllm serve` that compose uses (vLLM's documented engine arguments).
VLLM_FLAGS = {
    "--revision",
    "--served-model-name",
    "--host",
    "--port",
    "--dtype",
    "--max-model-len",
    "--gpu-memory-utilization",
    "--max-num-seqs",
    "--max-num-batched-tokens",
    "--enable-prefix-caching",
}
# Flags the monitoring profile passes to prometheus and alertmanager (documented command-line flags).
PROMETHEUS_FLAGS = {"--config.file", "--storage.tsdb.path", "--storage.tsdb.retention.time"}
ALERTMANAGER_FLAGS = {"--config.file", "--storage.path"}
# Images that run their own entrypoint with no command (configured by env and mounts).
NO_COMMAND_IMAGES = {"postgres", "grafana/grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _parse_sous(argv: list[str]) -> None:
    """Parses `sous <command> args...` with that command's own argument parser."""
    name, *rest = argv
    assert name in COMMANDS, f"`sous {name}` is not a sous command"
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"sous {name}", exit_on_error=False)
    module.add_arguments(parser)
    parser.parse_args(rest)


def _check_command(service: str, spec: dict[str, Any]) -> None:
    command = spec.get("command")
    assert command, f"{service} has no command"
    argv = command if isinstance(command, list) else shlex.split(command)
    image = spec.get("image", "")
    if image.startswith("sous-app"):
        assert argv[0] in APP_IMAGE_COMMANDS, f"{service}: {argv[0]} is not in the app image"
        if argv[0] == "sous":
            _parse_sous(argv[1:])
        else:
            conf = argv[argv.index("-c") + 1]
            assert conf.startswith("/app/") and (ROOT / conf.removeprefix("/app/")).is_file(), conf
    elif image.split(":")[0] == "redis":
        assert argv[0] == "redis-server"
    elif "vllm" in image:
        args = argv[2:] if argv[:2] == ["vllm", "serve"] else argv  # vllm-openai's entrypoint is `vllm serve`
        assert args[0] == "Qwen/Qwen3-8B"
        flags = {a.split("=", 1)[0] for a in args[1:]}
        assert flags <= VLLM_FLAGS, flags - VLLM_FLAGS
        assert "--revision" in flags and "--served-model-name=qwen3-8b-instruct" in args
    elif image.split(":")[0] == "prom/prometheus":
        flags = {a.split("=", 1)[0] for a in argv}
        assert flags <= PROMETHEUS_FLAGS, flags - PROMETHEUS_FLAGS
    elif image.split(":")[0] == "prom/alertmanager":
        flags = {a.split("=", 1)[0] for a in argv}
        assert flags <= ALERTMANAGER_FLAGS, flags - ALERTMANAGER_FLAGS
    else:
        pytest.fail(f"{service}: unknown image {image}")


def test_every_command_is_a_real_command_line(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        if "command" in spec:
            _check_command(name, spec)
        else:
            assert spec["image"].split(":")[0] in NO_COMMAND_IMAGES, name


def test_every_variable_is_documented() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert used, "no variables found"
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"


def test_settings_are_documented() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    names = {n.upper() for n in Settings.model_fields}
    assert names <= documented, f"undocumented settings: {sorted(names - documented)}"


def test_secrets_have_no_defaults() -> None:
    text = COMPOSE.read_text()
    for secret in ("POSTGRES_PASSWORD", "SERVICE_API_KEY"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses and all(u.startswith(":?") for u in uses), secret


def test_no_latest_or_unpinned_images(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        image = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", spec["image"])
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"


def test_build_contexts_and_dockerfiles_exist(compose: dict[str, Any]) -> None:
    builds = [spec["build"] for spec in compose["services"].values() if "build" in spec]
    assert builds
    for build in builds:
        context = ROOT / build["context"]
        assert context.is_dir()
        assert (context / build["dockerfile"]).is_file()
    dockerfile = (ROOT / "images/app.Dockerfile").read_text()
    for src in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_dependents_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services.items():
        deps = spec.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must name conditions"
        for dep, cond in deps.items():
            target = services[dep]
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in target, f"{name} waits on {dep}, which has no healthcheck"
            else:
                assert cond["condition"] == "service_completed_successfully", (name, dep)
                assert target.get("restart") == "no", f"{dep} is not a one-shot"


def test_vllm_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["vllm-rocm"]["profiles"] == ["rocm"]
    assert services["vllm-cuda"]["profiles"] == ["cuda"]
    assert services["vllm-sim"]["profiles"] == ["sim"]
    rocm = services["vllm-rocm"]
    assert rocm["devices"] == ["/dev/kfd", "/dev/dri"]
    assert set(rocm["group_add"]) == {"video", "render"}
    assert rocm["ipc"] == "host" and "seccomp=unconfined" in rocm["security_opt"]
    assert rocm["environment"]["VLLM_ROCM_USE_AITER"] == "0"
    assert services["vllm-cuda"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_supervisord_programs_are_sous_commands() -> None:
    conf = configparser.RawConfigParser()
    conf.read(ROOT / "images/supervisord.conf")
    programs = [s for s in conf.sections() if s.startswith("program:")]
    assert {"program:dispatcher", "program:worker"} <= set(programs)
    for section in programs:
        argv = shlex.split(conf.get(section, "command"))
        assert argv[0] == "sous"
        _parse_sous(argv[1:])
        assert conf.get(section, "stopsignal") == "TERM"


def test_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# --- worker-box mode (compose.worker-box.yaml): the extra boxes of docs/scale-out.md ---
WORKER_BOX = ROOT / "compose.worker-box.yaml"
PER_BOX_ENV = {"DATABASE_URL", "BOX_ID"}  # the only settings the two files set differently


@pytest.fixture(scope="module")
def worker_box() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKER_BOX.read_text())
    return data


def test_worker_box_validates_against_the_compose_specification() -> None:
    checker = str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(WORKER_BOX)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_worker_box_has_no_database_server_and_requires_the_shared_one(worker_box: dict[str, Any]) -> None:
    services = worker_box["services"]
    assert set(services) == {"redis", "vllm-rocm", "vllm-cuda", "vllm-sim", "api", "worker"}
    text = WORKER_BOX.read_text()
    assert "${POSTGRES_PASSWORD" not in text  # interpolated even for services that never start
    env = worker_box["x-app-env"]
    for name in ("DATABASE_URL", "BOX_ID", "SERVICE_API_KEY"):
        assert env[name].startswith("${" + name + ":?"), f"{name} must be required on a worker box"
    for spec in services.values():
        assert spec.get("environment", {}).get("DATABASE_URL", env["DATABASE_URL"]) == env["DATABASE_URL"]
        assert not {"postgres", "migrate"} & set(spec.get("depends_on", {}))


def test_worker_box_dependents_wait_on_a_healthcheck(worker_box: dict[str, Any]) -> None:
    services = worker_box["services"]
    waited = 0
    for name, spec in services.items():
        for dep, cond in spec.get("depends_on", {}).items():
            assert cond["condition"] == "service_healthy", (name, dep)
            assert "healthcheck" in services[dep], f"{name} waits on {dep}, which has no healthcheck"
            waited += 1
    assert waited >= 5  # api on redis; worker on redis and the three model servers


def test_worker_box_services_are_the_primary_box_services(
    compose: dict[str, Any], worker_box: dict[str, Any]
) -> None:
    """Only the database parts differ: a change to compose.yaml must be made in both files."""
    primary_env, box_env = compose["x-app-env"], worker_box["x-app-env"]
    assert set(primary_env) == set(box_env)
    assert {k for k in primary_env if primary_env[k] != box_env[k]} == PER_BOX_ENV
    for name, box_spec in worker_box["services"].items():
        primary = dict(compose["services"][name])
        box = dict(box_spec)
        deps = {d: c for d, c in primary.pop("depends_on", {}).items() if d not in ("postgres", "migrate")}
        assert box.pop("depends_on", {}) == deps, name
        for spec in (primary, box):
            if isinstance(spec.get("environment"), dict):
                spec["environment"] = {k: v for k, v in spec["environment"].items() if k not in PER_BOX_ENV}
        assert box == primary, name
        if "command" in box:
            _check_command(name, box)


def test_worker_box_variables_are_documented_and_make_starts_it() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", WORKER_BOX.read_text()))
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^up-worker-box:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert target and "-f compose.worker-box.yaml" in target.group(1) and "--wait" in target.group(1)
