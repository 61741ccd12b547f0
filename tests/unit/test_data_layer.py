"""All SQL of core/queries.sql is reached through the data layer: named functions in a few core/
modules. No other module runs a named query (core.db's execute/fetch_* or core.sql) or names
one, every query has a one-line description, and none is left unused."""

from __future__ import annotations

import ast
from pathlib import Path

from core.sql import all_queries

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "core", "model", "worker", "cli", "devtools", "loadtest")
DATA_LAYER = {
    f"core/{name}.py"
    for name in (
        "db",
        "sql",
        "queue",
        "menu_jobs",
        "quotas",
        "observability",
        "runs",
        "cache_store",
        "shadow_store",
        "leader",
        "ops_actions",
        "stage",
    )
} | {"core/adoption/apply.py", "core/adoption/catalog.py"}  # `sous migrate`: catalog reads, its log
RUNNERS = {"execute", "fetch_all", "fetch_one", "fetch_value", "query", "all_queries"}


def _core_package(call: ast.Call) -> bool:
    """A runner call without package=..., or with package="core": it runs core/queries.sql."""
    for kw in call.keywords:
        if kw.arg == "package":
            return isinstance(kw.value, ast.Constant) and kw.value.value == "core"
    return True


def data_layer_violations(source: str, where: str, names: set[str]) -> list[str]:
    tree = ast.parse(source)
    db_aliases: set[str] = set()  # `from core import db` / `import core.db as x`
    runners: set[str] = set()  # `from core.db import fetch_all`, `from core.sql import query`
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "core":
            db_aliases.update(a.asname or a.name for a in node.names if a.name in ("db", "sql"))
        elif isinstance(node, ast.ImportFrom) and node.module in ("core.db", "core.sql"):
            runners.update(a.asname or a.name for a in node.names if a.name in RUNNERS)
        elif isinstance(node, ast.Import):
            db_aliases.update(a.asname for a in node.names if a.name in ("core.db", "core.sql") and a.asname)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        line = f"{where}:{node.lineno}"
        via_core = (
            isinstance(func, ast.Attribute)
            and func.attr in RUNNERS
            and isinstance(func.value, ast.Name)
            and func.value.id in db_aliases
        ) or (isinstance(func, ast.Name) and func.id in runners)
        if via_core and _core_package(node):
            found.append(f"{line}: runs a named query ({name}) outside the data layer")
        elif name in RUNNERS:
            args = [*node.args, *(kw.value for kw in node.keywords)]
            for arg in args:
                if isinstance(arg, ast.Constant) and arg.value in names:
                    found.append(f"{line}: names the query {arg.value!r} outside the data layer")
    return found


def test_only_the_data_layer_runs_named_queries() -> None:
    names = set(all_queries())
    violations = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel not in DATA_LAYER:
                violations += data_layer_violations(path.read_text(encoding="utf-8"), rel, names)
    assert violations == []


def test_the_scan_catches_a_query_run_outside_the_data_layer() -> None:
    names = {"get_row"}
    planted = """
import sqlalchemy as sa
from core import db
from core.sql import query
def f(conn, engine):
    db.fetch_one(conn, "get_row", {"id": 1})
    conn.execute(sa.text(query("get_row")))
    engine.execute("get_row")
"""
    assert len(data_layer_violations(planted, "planted.py", names)) == 3
    ok = """
from core import db
def f(conn):
    db.fetch_all(conn, "slo_rows", package="loadtest")
    with_retries("get_row", lambda: None)  # a label, not a query run
"""
    assert data_layer_violations(ok, "ok.py", names) == []


def test_every_query_has_a_description_and_a_caller() -> None:
    layer = "\n".join((ROOT / rel).read_text(encoding="utf-8") for rel in DATA_LAYER)
    for name, body in all_queries().items():
        assert body.startswith("--"), f"{name}: no one-line description"
        assert f'"{name}"' in layer, f"{name}: no data-layer function runs it"


def test_load_test_sql_is_its_own_file() -> None:
    core, loadtest = set(all_queries()), set(all_queries("loadtest"))
    assert {"slo_rows", "slo_resolved_twice", "slo_live_count", "chaos_terminate_backends"} <= loadtest
    assert not core & loadtest
    assert not {n for n in core if n.startswith(("slo_", "chaos_"))}
