"""A model that calls everything "not food" (`sous sim` fault mode `rejected_rate=1`), through
the real pipeline: sim, RQ workers and dispatcher on real Postgres and Redis. Its rejections
count only where the rules agree, so good ingredient lines still resolve (by the rules after
retry and split) and no good line lands in the canonical cache as rejected."""

from __future__ import annotations

import sqlalchemy as sa

from devtools.procs import wait_until
from model.rules import resolve_with_rules
from tests.e2e.test_pipeline_fleet import start_fleet
from tests.pipeline_support import all_terminal, seed, stack

GOOD = [
    "2 cups all-purpose flour", "3 large eggs, beaten", "1 tsp salt", "½ cup milk", "2 cloves garlic",
    "1 tbsp olive oil", "1 onion, diced", "200 g butter", "3 anchovy fillets packed in oil",
    "6 tablespoons very cold heavy cream", "500g pork mince", "1 quart half and half",
]  # fmt: skip
NOT_FOOD = ["2 rolls paper towels", "1 bottle dish soap"]


def test_a_model_rejecting_everything_cannot_reject_food_or_poison_the_cache(
    engine: sa.Engine, database_url: str, redis_url: str
) -> None:
    seed(engine, GOOD + NOT_FOOD)
    with stack(database_url, redis_url, QUEUE_CHUNK_MAX_ITEMS="4", PROVIDER_COOLDOWN_SECONDS="0") as s:
        s.start_sim("instant")
        s.sim_faults(rejected_rate=1.0)
        start_fleet(s, redis_url, 1)
        wait_until(lambda: all_terminal(engine, len(GOOD) + len(NOT_FOOD)), 60, s.logs)
        assert s.sim_requests() > 0  # the model was asked (and answered "not food" every time)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT cleaned_name, status, provider, canonical_name FROM ingredient_match_queue")
            ).all()
            cached = conn.execute(
                sa.text("SELECT normalized_name, status, provider FROM ingredient_canonical_cache")
            ).all()
    by_line = {r.cleaned_name: r for r in rows}
    for line in GOOD:  # every good line resolved, by the rules (the model's answers were refused)
        row = by_line[line]
        assert (row.status, row.provider) == ("resolved", "rules"), row
        assert row.canonical_name == resolve_with_rules(line).canonical_name
    for line in NOT_FOOD:  # where the rules agree, the model's rejection stands
        assert (by_line[line].status, by_line[line].provider) == ("rejected", "local")
    rejected_in_cache = {c.normalized_name for c in cached if c.status == "rejected"}
    assert rejected_in_cache == {line.casefold() for line in NOT_FOOD}
    assert all(c.status != "rejected" or c.provider == "local" for c in cached)
