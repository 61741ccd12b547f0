"""Loads core/queries.sql: every SQL statement of sous, each under a `-- name:` line (and the
load tests' loadtest/queries.sql, the same way: `package="loadtest"`)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def all_queries(package: str = "core") -> dict[str, str]:
    text = resources.files(package).joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise RuntimeError(f"query {name!r} is defined twice in queries.sql")
        lines = body.strip().splitlines()
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()  # a section heading after the statement belongs to no query
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


def query(name: str, package: str = "core") -> str:
    try:
        return all_queries(package)[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {package}/queries.sql") from None
