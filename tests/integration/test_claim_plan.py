"""Claiming from a queue of a million resolved rows and a thousand pending ones stays an index scan."""

from __future__ import annotations

import psycopg

from core.db import libpq_url


def test_claim_walks_the_partial_index(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingredient_match_queue (raw_name, status, created_at, canonical_name, resolved_at) "
            "SELECT 'old ' || g, 'resolved', now() - interval '30 days' + g * interval '1 second', "
            "'x', now() "
            "FROM generate_series(1, 1000000) g"
        )
        conn.execute(
            "INSERT INTO ingredient_match_queue (raw_name, source, needs_unit_review) "
            "SELECT 'new ' || g, CASE WHEN g % 2 = 0 THEN 'scraper' ELSE 'recipe' END, g % 3 = 0 "
            "FROM generate_series(1, 1000) g"
        )
        conn.execute("ANALYZE ingredient_match_queue")

        # auto_explain reports the plan of the statement inside the SQL function itself.
        plans: list[str] = []
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for setting in (
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_nested_statements = on",
            "auto_explain.log_analyze = on",
            "auto_explain.log_level = notice",
            "client_min_messages = notice",
        ):
            conn.execute(f"SET {setting}")
        for review, source in (("any", "any"), ("ingredient", "scraper"), ("unit", "recipe")):
            plans.clear()
            rows = conn.execute(
                "SELECT id FROM claim_ingredient_match_queue(50, 'plan-test', 60, %s, %s)", (review, source)
            ).fetchall()
            assert len(rows) == 50
            claim_plans = [p for p in plans if "ingredient_match_queue_claimable_idx" in p or "Seq Scan" in p]
            assert claim_plans, "\n---\n".join(plans)
            plan = "\n".join(claim_plans)
            print(plan)  # shown with pytest -s: the plan the claim really ran
            assert "Index Scan on ingredient_match_queue_claimable_idx" in plan or (
                "Index Scan using ingredient_match_queue_claimable_idx" in plan
            )
            assert "Seq Scan on ingredient_match_queue" not in plan
