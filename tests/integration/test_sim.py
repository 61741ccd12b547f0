"""The simulator as a real process (`sous sim` under uvicorn) and the chain against it:
contract endpoints, faults that make the chain fall through, fault windows, health gating."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from core.settings import Settings
from devtools.sim_process import SimProcess
from model.ingredients import IngredientQuery, IngredientResolver

QUERIES = [
    IngredientQuery.of(t) for t in ["2 cups flour", "3 large eggs", "paper towels", "1 tsp salt", "garlic"]
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(profile="instant", args=("--hang-seconds", "5", "--seed", "1")) as proc:
        yield proc


@pytest.fixture(autouse=True)
def no_faults(sim: SimProcess) -> Iterator[None]:
    sim.set_faults()
    sim.set_healthy(True)
    yield
    sim.set_faults()
    sim.set_healthy(True)


def resolver(sim: SimProcess, timeout_ms: int = 20_000, providers: str = "local,rules") -> IngredientResolver:
    settings = Settings(
        local_llm_enabled=True, local_llm_base_url=sim.base_url, local_llm_timeout_ms=timeout_ms,
        llm_providers=providers, provider_cooldown_seconds=0,
    )  # fmt: skip
    return IngredientResolver.from_settings(settings)


def test_contract_endpoints_are_labelled_simulated(sim: SimProcess) -> None:
    health = httpx.get(f"{sim.url}/health")
    assert health.status_code == 200 and health.headers["x-sous-simulated"] == "true"
    models = httpx.get(f"{sim.base_url}/models").json()
    assert models["data"][0]["id"] == "qwen3-8b-instruct" and "simulated" in models["data"][0]["owned_by"]
    resolver(sim).resolve(QUERIES[:1])
    metrics = httpx.get(f"{sim.url}/metrics").text
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:request_success_total",
                 "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:e2e_request_latency_seconds_bucket", "sous_sim_chat_requests_total"):  # fmt: skip
        assert name in metrics
    assert 'simulated="true"' in metrics


def test_batched_answers_come_from_the_model_in_one_request(sim: SimProcess) -> None:
    before = sim.chat_requests()
    answers = resolver(sim).resolve(QUERIES)
    assert sim.chat_requests() - before == 1
    assert [a.provider for a in answers] == ["local"] * 5
    assert [a.canonical_name for a in answers] == ["flour", "egg", None, "salt", "garlic"]
    assert answers[2].status == "rejected"
    resp = httpx.post(
        f"{sim.base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": '["salt"]'}],
              "response_format": {"type": "json_object", "schema": {"title": "ingredient_names"}}},
    )  # fmt: skip
    body = resp.json()
    assert body["system_fingerprint"] == "sous-sim" and body["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("fault", ["error_rate", "malformed_rate"])
def test_faults_make_the_chain_fall_through_to_rules(sim: SimProcess, fault: str) -> None:
    sim.set_faults(**{fault: 1.0})
    before = sim.chat_requests()
    answers = resolver(sim).resolve(QUERIES)
    assert [a.status for a in answers] == ["resolved", "resolved", "rejected", "resolved", "resolved"]
    assert {a.provider for a in answers} == {"rules"}
    assert sim.chat_requests() - before >= 2  # tried, retried


def test_timeouts_fall_through_and_nothing_is_lost(sim: SimProcess) -> None:
    sim.set_faults(timeout_rate=1.0)
    started = time.monotonic()
    answers = resolver(sim, timeout_ms=500).resolve(QUERIES)
    assert len(answers) == 5 and {a.provider for a in answers} == {"rules"}
    assert time.monotonic() - started < 5  # two 0.5 s attempts, no split for a timeout


def test_without_rules_a_failing_model_leaves_items_failed_with_the_error(sim: SimProcess) -> None:
    sim.set_faults(error_rate=1.0)
    answers = resolver(sim, providers="local").resolve([*QUERIES, IngredientQuery.of("<b>x</b>")])
    # junk needs no model; non-food ("paper towels") does when rules are not in the chain
    assert [a.status for a in answers] == ["failed"] * 5 + ["rejected"]
    assert answers[0].reason and "500" in answers[0].reason


def test_fault_window_closes_by_itself(sim: SimProcess) -> None:
    state = sim.set_faults(error_rate=1.0, duration_s=1.0)
    assert state["error_rate"] == 1.0 and state["window_seconds_left"] > 0
    assert {a.provider for a in resolver(sim).resolve(QUERIES[:2])} == {"rules"}
    time.sleep(1.1)
    assert {a.provider for a in resolver(sim).resolve(QUERIES[:2])} == {"local"}
    bad = httpx.post(f"{sim.url}/admin/faults", json={"error_rate": 0.7, "timeout_rate": 0.7})
    assert bad.status_code == 400


def test_unhealthy_server_is_not_called(sim: SimProcess) -> None:
    sim.set_healthy(False)
    before = sim.chat_requests()
    answers = resolver(sim).resolve(QUERIES)
    assert {a.provider for a in answers} == {"rules"}
    assert sim.chat_requests() == before


def test_unknown_schema_is_a_clear_400(sim: SimProcess) -> None:
    resp = httpx.post(
        f"{sim.base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}],
              "response_format": {"type": "json_schema", "json_schema": {"name": "nope", "schema": {}}}},
    )  # fmt: skip
    assert resp.status_code == 400 and "nope" in resp.json()["error"]["message"]
