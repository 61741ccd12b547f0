"""Provider metrics (prometheus_client, the default registry). Creating metric objects touches
nothing outside the process; the API's /metrics and the workers expose them."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROVIDER_CALLS = Counter(
    "sous_provider_calls",
    "Model provider calls by outcome (ok, timeout, connection, http_error, invalid)",
    ["provider", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "sous_provider_latency_seconds",
    "Latency of model provider calls",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
)
PROVIDER_TOKENS = Counter("sous_provider_tokens", "Tokens reported by providers", ["provider", "kind"])
PROVIDER_COOLDOWNS = Counter("sous_provider_cooldowns", "Times a provider was put in cool-down", ["provider"])
INGREDIENT_ANSWERS = Counter(
    "sous_ingredient_answers", "Ingredient answers by provider and status", ["provider", "status"]
)
# Canonical-cache lookups of the ingredient chunks (worker.tasks.ChunkRunner._answer records
# them with record_cache_lookups); /metrics sums them over the box's processes.
INGREDIENT_CACHE_LOOKUPS = Counter(
    "sous_ingredient_cache_lookups", "Canonical cache lookups of distinct names by result", ["result"]
)


def record_cache_lookups(hits: int, misses: int) -> None:
    if hits:
        INGREDIENT_CACHE_LOOKUPS.labels("hit").inc(hits)
    if misses:
        INGREDIENT_CACHE_LOOKUPS.labels("miss").inc(misses)
