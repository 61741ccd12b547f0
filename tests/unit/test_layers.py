"""The layers of docs/architecture.md, read from the import statements: core imports no other
package of sous; model imports only core; api and worker share only core and model and never
import each other; the runtime never imports the CLI, the development tools or the load tests."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "model", "api", "worker", "cli", "devtools", "loadtest", "migrations")
# package -> the packages of sous it may import
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "model": {"core"},
    "api": {"core", "model"},
    "worker": {"core", "model"},
    "migrations": {"core"},
    "devtools": {"core", "model"},
    "cli": {"core", "model", "worker", "devtools"},
    "loadtest": {"core", "model", "devtools"},
}


def imported_packages(source: str) -> set[str]:
    """The top-level packages of sous that `source` imports (any import statement, at any depth)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES)
    return found


def layer_violations() -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            extra = imported_packages(path.read_text(encoding="utf-8")) - ALLOWED[package] - {package}
            problems += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(extra)]
    return problems


def test_every_package_imports_only_the_layers_below_it() -> None:
    assert layer_violations() == []


def test_the_scan_sees_imports_inside_functions() -> None:
    source = "def run():\n    from worker.tasks import drain\n    import devtools.stack\n"
    assert imported_packages(source) == {"worker", "devtools"}
    assert imported_packages("from . import sibling\nimport requests\n") == set()


def test_every_package_has_a_rule() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk == set(PACKAGES)
