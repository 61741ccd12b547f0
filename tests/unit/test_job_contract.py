"""The RQ job contract has one home, core/jobs.py: queue names, task paths and job-id schemes are
written nowhere else in the production code, and only it enqueues."""

from __future__ import annotations

import ast
from pathlib import Path

from core import jobs

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "core", "model", "worker", "cli", "devtools", "loadtest")
HOME = ROOT / "core" / "jobs.py"
CONTRACT_STRINGS = {*jobs.QUEUES, jobs.CHUNK_TASK, jobs.MENU_TASK}
CONTRACT_FUNCTIONS = {"menu_rq_id", "chunk_job_id", "chunk_prefix", "enqueue_menu_job", "enqueue_chunk"}


def _allowed_positions(tree: ast.AST) -> set[int]:
    """Strings that only share a queue's name: dict keys (JSON fields, log fields), OpenAPI
    tags and Literal[...] members."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            allowed.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.keyword) and node.arg == "tags":
            allowed.update(id(n) for n in ast.walk(node.value))
        elif isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "Literal":
            allowed.update(id(n) for n in ast.walk(node.slice))
    return allowed


def contract_violations(source: str, where: str) -> list[str]:
    tree = ast.parse(source)
    allowed = _allowed_positions(tree)
    uses_rq = any(
        (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "rq")
        or (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "rq" for a in n.names))
        for n in ast.walk(tree)
    )
    found = []
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in allowed:
            if node.value in CONTRACT_STRINGS:
                found.append(f"{line}: {node.value!r} is core.jobs' to define")
            elif node.value.startswith(jobs.MENU_PREFIX):
                found.append(f"{line}: a menu job id built outside core.jobs.menu_rq_id")
        elif isinstance(node, ast.FunctionDef) and node.name in CONTRACT_FUNCTIONS:
            found.append(f"{line}: {node.name} is defined in core/jobs.py")
        elif (
            uses_rq
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("enqueue", "enqueue_call")
        ):
            found.append(f"{line}: enqueue through core.jobs, not Queue.{node.func.attr}")  # rq's
    return found


def production_files() -> list[Path]:
    return [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) if p != HOME]


def test_the_job_contract_is_defined_once() -> None:
    violations = [
        v
        for path in production_files()
        for v in contract_violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert violations == []


def test_the_scan_catches_a_second_definition() -> None:
    planted = """
from rq import Queue
MENU_QUEUE = "menus"
TASK = "worker.tasks.process_chunk"
def enqueue(q, job_id, attempt):
    q.enqueue("x", job_id=f"menu-{job_id}-a{attempt}")
def chunk_job_id(prefix, fences):
    return prefix
"""
    found = contract_violations(planted, "planted.py")
    assert len(found) == 5, found
    ok = """
from typing import Literal
Stage = Literal["menus"]
counts = {"ingredients": 1, "menus": 2}
router = dict(tags=["ingredients"])
"""
    assert contract_violations(ok, "ok.py") == []


def test_job_ids() -> None:
    assert jobs.menu_rq_id("42") == "menu-42"
    assert jobs.menu_rq_id("42", 3) == "menu-42-a3"
    a = jobs.chunk_job_id(jobs.chunk_prefix(False), [(1, 1), (2, 1)])
    assert a.startswith("ingredients-") and a == jobs.chunk_job_id("ingredients", [(2, 1), (1, 1)])
    assert jobs.chunk_job_id(jobs.chunk_prefix(True), [(1, 1), (2, 1)]).startswith("shadow-")
    assert jobs.chunk_timeout(10) == jobs.MIN_CHUNK_TIMEOUT and jobs.chunk_timeout(600) == 2400
