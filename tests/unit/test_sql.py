from __future__ import annotations

import re

from core.sql import all_queries


def test_queries_load_and_have_bodies() -> None:
    queries = all_queries()
    assert {"claim_rows", "complete_rows", "fail_rows", "reject_rows", "requeue_expired"} <= set(queries)
    for name, body in queries.items():
        assert body.strip(), name
        # One statement per name: a stray `;` inside would make a second one.
        code = re.sub(r"--[^\n]*", "", re.sub(r"'[^']*'", "", body))
        assert ";" not in code, name
