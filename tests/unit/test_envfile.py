"""scripts/envfile.py: what `make rollback`, `make roll-forward` and `make stage` write into
.env, so the choice survives `make up` and restarts. Run as the Makefile runs it (a process)."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "envfile.py"


def envfile(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--file", str(path), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def changed_lines(before: str, after: str) -> dict[str, tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "lines were added or removed"
    return {x.split("=", 1)[0]: (x, y) for x, y in zip(a, b, strict=True) if x != y}


@pytest.fixture
def dotenv(tmp_path: Path) -> Path:
    """.env.example filled in the way an operator does, with a secret file's mode."""
    path = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", path)
    text = path.read_text().replace("SERVICE_API_KEY=   ", "SERVICE_API_KEY=abc-0123456789abcdef")
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_rollback_writes_the_choice_and_keeps_every_other_line(dotenv: Path) -> None:
    before = dotenv.read_text()
    result = envfile(dotenv, "rollback")
    assert result.returncode == 0, result.stderr
    after = dotenv.read_text()
    changed = changed_lines(before, after)
    assert set(changed) == {"LOCAL_LLM_ENABLED", "GPU", "GPU_BEFORE_ROLLBACK"}
    # Value replaced; the inline comment kept, in its column.
    old, new = changed["LOCAL_LLM_ENABLED"]
    assert old.startswith("LOCAL_LLM_ENABLED=true ") and new.startswith("LOCAL_LLM_ENABLED=false ")
    assert old.index("#") == new.index("#") and old[old.index("#") :] == new[new.index("#") :]
    assert re.match(r"GPU=none\s+#", changed["GPU"][1])
    assert re.match(r"GPU_BEFORE_ROLLBACK=rocm\s+#", changed["GPU_BEFORE_ROLLBACK"][1])
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600  # it holds secrets
    assert envfile(dotenv, "get", "LOCAL_LLM_ENABLED").stdout.strip() == "false"
    assert envfile(dotenv, "get", "SERVICE_API_KEY").stdout.strip() == "abc-0123456789abcdef"


def test_roll_forward_restores_the_file_exactly(dotenv: Path) -> None:
    original = dotenv.read_text()
    assert envfile(dotenv, "rollback").returncode == 0
    assert envfile(dotenv, "rollback").returncode == 0  # twice: still remembers rocm, not none
    assert envfile(dotenv, "get", "GPU_BEFORE_ROLLBACK").stdout.strip() == "rocm"
    assert envfile(dotenv, "roll-forward").returncode == 0
    assert dotenv.read_text() == original


def test_roll_forward_to_another_gpu_and_on_a_file_without_the_lines(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# my box\nPOSTGRES_PASSWORD=s3cret-pw   # keep me\n\nGPU=sim\n")
    assert envfile(path, "rollback").returncode == 0
    text = path.read_text()
    assert text.startswith("# my box\nPOSTGRES_PASSWORD=s3cret-pw   # keep me\n\nGPU=none\n")
    assert "LOCAL_LLM_ENABLED=false\n" in text and "GPU_BEFORE_ROLLBACK=sim\n" in text
    assert envfile(path, "roll-forward", "--gpu", "cuda").returncode == 0
    assert "GPU=cuda\n" in path.read_text() and "LOCAL_LLM_ENABLED=true\n" in path.read_text()


def test_stage_and_set(dotenv: Path) -> None:
    before = dotenv.read_text()
    assert envfile(dotenv, "stage", "partial").returncode == 0
    assert envfile(dotenv, "set", "OPENAI_MODEL=gpt-4.1 mini # x").returncode == 0
    changed = changed_lines(before, dotenv.read_text())
    assert set(changed) == {"ROLLOUT_STAGE", "OPENAI_MODEL"}
    assert changed["ROLLOUT_STAGE"][1].startswith("ROLLOUT_STAGE=partial ")
    assert changed["OPENAI_MODEL"][1] == 'OPENAI_MODEL="gpt-4.1 mini # x"'  # quoted: # is not a comment
    assert envfile(dotenv, "get", "OPENAI_MODEL").stdout.strip() == "gpt-4.1 mini # x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stage", "production"), "invalid choice"),
        (("set", "NOT A PAIR"), "not NAME=VALUE"),
        (("roll-forward", "--gpu", "tpu"), "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(dotenv: Path, args: tuple[str, ...], message: str) -> None:
    before = dotenv.read_text()
    result = envfile(dotenv, *args)
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
    assert dotenv.read_text() == before


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = envfile(tmp_path / ".env", "rollback")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "copy .env.example to .env" in result.stderr


def test_makefile_targets_use_the_script_and_recreate_the_services() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target, command in (("rollback", "rollback"), ("roll-forward", "roll-forward"), ("stage", "stage")):
        body = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert body, target
        assert f"$(ENVFILE) {command}" in body[1] and "$(MAKE) --no-print-directory up" in body[1]
    assert "ENVFILE := $(PYTHON) scripts/envfile.py --file .env" in makefile
