"""No log call may pass a LogRecord attribute through `extra=`: the standard library raises
KeyError inside the call (issue 13: every menu upload answered 500 at LOG_LEVEL=INFO because
of `extra={"created": ...}`). A static scan of the whole code base, and the runtime guard."""

from __future__ import annotations

import ast
import io
import json
import logging
from pathlib import Path

import pytest

from core.logging import RESERVED_FIELDS, FieldSafeLogger, JsonFormatter, install_field_guard

ROOT = Path(__file__).resolve().parents[2]
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


def python_files() -> list[Path]:
    return [p for p in ROOT.rglob("*.py") if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)]


def dict_literals(tree: ast.AST) -> dict[str, list[ast.Dict]]:
    """Names bound to a dict literal anywhere in the file (`fields = {...}`)."""
    bound: dict[str, list[ast.Dict]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
    return bound


def extra_keys(node: ast.expr, bound: dict[str, list[ast.Dict]]) -> list[str] | None:
    """The string keys of an `extra=` argument that can be read statically. None: the keys come
    from a call (`asdict(report)`, `faults.describe()`), which only the run-time guard sees."""
    if isinstance(node, ast.Dict):
        keys: list[str] = []
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**other}
                keys += extra_keys(value, bound) or []
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.append(key.value)
        return keys
    if isinstance(node, ast.Name) and node.id in bound:
        return [k for d in bound[node.id] for k in extra_keys(d, bound) or []]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return [kw.arg for kw in node.keywords if kw.arg is not None]
    return None


def reserved_uses(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename)
    bound = dict_literals(tree)
    problems = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
        ):
            continue
        for kw in node.keywords:
            if kw.arg == "extra":
                keys = extra_keys(kw.value, bound) or []
                problems += [
                    f"{filename}:{node.lineno}: extra key {k!r} is a LogRecord attribute"
                    for k in keys
                    if k in RESERVED_FIELDS
                ]
    return problems


def test_the_scan_finds_a_reserved_key() -> None:
    bad = 'log.info("x", extra={"job_id": 1, "created": True})\nlogger.warning("y", extra=dict(name="n"))\n'
    found = reserved_uses(bad, "bad.py")
    assert len(found) == 2 and "'created'" in found[0] and "'name'" in found[1]
    assert reserved_uses('log.info("x", extra={"job_id": 1, "new_job": True})', "ok.py") == []
    spread = 'f = {"msg": 1}\nlog.error("x", extra=f)\nlog.info("y", extra={**f, "ok": 2})\n'
    assert len(reserved_uses(spread, "spread.py")) == 2


def test_no_log_call_in_the_code_base_passes_a_reserved_name() -> None:
    files = python_files()
    assert len(files) > 50  # the scan really walks the repository
    problems = [p for f in files for p in reserved_uses(f.read_text(), str(f.relative_to(ROOT)))]
    assert problems == []


@pytest.mark.parametrize("key", ["created", "name", "msg", "args", "message", "asctime", "levelname"])
def test_the_guard_namespaces_a_reserved_key_instead_of_raising(key: str) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    plain = logging.getLogger(f"sous.test.plain.{key}")  # made before the guard, like module loggers
    install_field_guard()
    later = logging.getLogger(f"sous.test.later.{key}")
    assert isinstance(later, FieldSafeLogger)
    for logger in (plain, later):
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.info("menu_submitted", extra={key: "value", "job_id": "j"})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert line["event"] == "menu_submitted" and line["job_id"] == "j"
        assert line[f"field_{key}"] == "value"
