"""The CLI's error paths as an operator meets them: one line on stderr, a non-zero exit, never a
traceback. Also `--version`, every command's help naming the settings it reads, `--json` on every
command that prints data, and `sous status` exiting 2 on an unmigrated database or an outage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli.main import COMMANDS, main
from devtools.services import free_port


def sous(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QUEUE_", "DRY_RUN", "ROLLOUT_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**base, "LLM_PROVIDERS": "rules", "LOG_LEVEL": "INFO", **env},
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )


def one_line_failure(r: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("dir", "is a directory"),
        (b"onion\n\xff\xfe garlic\n", "not UTF-8 text (line 2"),
        (b"onion\nga\x00rlic\n", "line 2: contains a NUL character"),
    ],
    ids=["missing", "directory", "non-utf8", "nul"],
)
def test_enqueue_refuses_bad_files(
    tmp_path: Path, database_url: str, engine: sa.Engine, content: bytes | str | None, expected: str
) -> None:
    target = tmp_path / "names.txt"
    if content == "dir":
        target.mkdir()
    elif isinstance(content, bytes):
        target.write_bytes(content)
    line = one_line_failure(sous("enqueue", "--file", str(target), DATABASE_URL=database_url))
    assert line.startswith("sous enqueue: INVALID_INPUT: ") and expected in line, line
    with engine.connect() as conn:  # nothing was written, not even the good first line
        assert conn.execute(sa.text("SELECT count(*) FROM ingredient_match_queue")).scalar_one() == 0


def test_enqueue_refuses_bad_arguments_and_stdin(database_url: str) -> None:
    line = one_line_failure(
        sous("enqueue", "a\x01b", "--file", "-", stdin=b"x\x00y\n", DATABASE_URL=database_url)
    )
    assert "-" in line and "NUL" in line
    line = one_line_failure(sous("enqueue", DATABASE_URL=database_url))
    assert "no names given" in line
    ok = sous("enqueue", "--json", "onion", "--file", "-", stdin=b"garlic\n", DATABASE_URL=database_url)
    assert ok.returncode == 0 and len(json.loads(ok.stdout)["ids"]) == 2


def test_status_names_sous_migrate_on_an_unmigrated_database(fresh_db: str) -> None:
    r = sous("status", DATABASE_URL=fresh_db)
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "not migrated: run `sous migrate`" in r.stdout and "relation" not in r.stdout + r.stderr
    j = json.loads(sous("status", "--json", DATABASE_URL=fresh_db).stdout)
    assert j["checks"]["database"] == "not migrated: run `sous migrate`"
    other = sous("shadow-report", DATABASE_URL=fresh_db)
    assert "sous migrate" in one_line_failure(other)


def test_status_exits_2_when_a_dependency_is_down(database_url: str, redis_url: str) -> None:
    healthy = sous("status", "--json", DATABASE_URL=database_url, REDIS_URL=redis_url,
                   ALERT_MIN_LIVE_WORKERS="0")  # fmt: skip
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    r = sous("status", "--json", DATABASE_URL=database_url, REDIS_URL=dead_redis, ALERT_MIN_LIVE_WORKERS="0")
    assert r.returncode == 2 and json.loads(r.stdout)["checks"]["redis"] == "down"
    dead_pg = f"postgresql://sous:x@127.0.0.1:{free_port()}/sous"
    r = sous("status", DATABASE_URL=dead_pg, REDIS_URL=redis_url)
    assert r.returncode == 2 and "database down" in r.stdout and "Traceback" not in r.stderr
    firing = sous("status", DATABASE_URL=database_url, REDIS_URL=redis_url)  # no live worker
    assert firing.returncode == 2 and "live RQ workers" in firing.stdout


def test_version_help_and_json_flags(capsys: pytest.CaptureFixture[str]) -> None:
    v = sous("--version")
    assert v.returncode == 0 and v.stdout.startswith("sous ")
    for name, (_, _what, reads) in COMMANDS.items():  # in-process: 13 interpreters cost 20 s
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0, name
        text = " ".join(capsys.readouterr().out.split())
        assert "Settings read (environment):" in text and " ".join(reads.split()) in text, name
        if name in ("enqueue", "status", "drain", "requeue-expired", "shadow-report", "token", "demo"):
            assert "--json" in text, name
    bad = one_line_failure(sous("status", "--no-such-flag"), code=2)
    assert bad == "sous status: unrecognized arguments: --no-such-flag (see sous status --help)"
    assert "invalid UUID" in one_line_failure(sous("token", "--user", "nope"), code=2)
