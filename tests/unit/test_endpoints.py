"""Several endpoints behind the "local" provider (model/endpoints.py), over the real OpenAI SDK with
a scripted transport: least-outstanding spreading with round-robin ties, per-endpoint health
gates and cool-downs, failover to another endpoint before the next provider."""

from __future__ import annotations

import json
import random

import httpx2 as httpx
import pytest

from core.errors import ProviderError
from core.settings import Settings
from model.chain import JsonRequest, ProviderChain, ProviderConfig, configs_from_settings
from model.endpoints import Endpoint, EndpointPool, split_base_urls
from model.ingredients import IngredientQuery, IngredientResolver
from tests.unit.test_chain import Clock, cloud, rules_answer

QUERIES = [IngredientQuery.of("2 cups flour")]


class Gpus:
    """Model servers by host name: per-host health status, chat behaviour and call count."""

    def __init__(self, *hosts: str) -> None:
        self.health = dict.fromkeys(hosts, 200)
        self.mode = dict.fromkeys(hosts, "ok")  # ok | error | error_once | refuse
        self.chats = dict.fromkeys(hosts, 0)
        self.health_checks = dict.fromkeys(hosts, 0)
        self.chats["openai"] = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if host in self.mode and self.mode[host] == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/health":
            self.health_checks[host] += 1
            return httpx.Response(self.health[host])
        self.chats[host] += 1
        if self.mode.get(host, "ok") in ("error", "error_once"):
            if self.mode[host] == "error_once":
                self.mode[host] = "ok"
            return httpx.Response(500, json={"error": {"message": "boom"}})
        return rules_answer(json.loads(request.content))


def local(*hosts: str) -> ProviderConfig:
    base, *more = [f"http://{h}.test:8000/v1" for h in hosts]
    return ProviderConfig(
        name="local", model="qwen3-8b-instruct", base_url=base, api_key="x", timeout_s=2,
        max_output_tokens=1000, health_url="http://gpu1.test:8000/health", extra_base_urls=tuple(more),
    )  # fmt: skip


def chain(gpus: Gpus, configs: list[ProviderConfig], clock: Clock | None = None) -> ProviderChain:
    http = httpx.Client(transport=httpx.MockTransport(gpus))
    return ProviderChain(configs, cooldown_seconds=30, clock=clock or Clock(), http_client=http)


def test_base_urls_are_split_and_each_gets_its_own_health_url() -> None:
    assert split_base_urls(" http://a:8000/v1/ ,, http://b:9000/v1 ") == [
        "http://a:8000/v1",
        "http://b:9000/v1",
    ]
    settings = Settings(
        llm_providers="local", local_llm_enabled=True, local_llm_base_url="http://a:8000/v1,http://b:9000/v1"
    )
    (cfg,) = configs_from_settings(settings)
    assert cfg.endpoint_urls() == [
        ("http://a:8000/v1", "http://a:8000/health"),
        ("http://b:9000/v1", "http://b:9000/health"),
    ]


def test_sequential_calls_alternate_between_endpoints() -> None:
    gpus = Gpus("gpu1", "gpu2")
    resolver = IngredientResolver(chain(gpus, [local("gpu1", "gpu2")]))
    for _ in range(10):
        assert [a.provider for a in resolver.resolve(QUERIES)] == ["local"]
    assert gpus.chats == {"gpu1": 5, "gpu2": 5, "openai": 0}
    assert gpus.health_checks == {"gpu1": 1, "gpu2": 1}  # each gated on its own /health (cached)


def test_least_outstanding_wins_and_ties_go_round_robin() -> None:
    eps = [Endpoint(f"http://e{i}/v1", None, client=None) for i in range(3)]  # type: ignore[arg-type]
    pool = EndpointPool(
        eps, clock=Clock(), check_health=lambda ep: True, cooldown_seconds=30, rng=random.Random(0)
    )
    held = [pool.acquire() for _ in range(3)]
    assert {id(e) for e in held} == {id(e) for e in eps}  # one each before any gets a second
    pool.release(eps[1])
    assert pool.acquire() is eps[1]  # the only one with nothing in flight
    for ep in eps:
        while ep.in_flight:
            pool.release(ep)
    order: list[Endpoint] = []
    for _ in range(6):
        got = pool.acquire()
        assert got is not None
        order.append(got)
        pool.release(got)
    assert [eps.index(e) for e in order] in ([0, 1, 2] * 2, [1, 2, 0] * 2, [2, 0, 1] * 2)
    assert pool.acquire(tried=[eps[0], eps[1]]) is eps[2]  # a retry goes elsewhere


def test_unhealthy_endpoint_is_skipped_and_the_other_serves() -> None:
    gpus = Gpus("gpu1", "gpu2")
    gpus.health["gpu1"] = 503
    chain_ = chain(gpus, [local("gpu1", "gpu2")])
    resolver = IngredientResolver(chain_)
    for _ in range(6):
        assert [a.provider for a in resolver.resolve(QUERIES)] == ["local"]
    assert gpus.chats["gpu1"] == 0 and gpus.chats["gpu2"] == 6
    assert chain_.is_available(chain_.providers[0])


def test_a_failing_endpoint_fails_over_within_the_call_then_cools_down_alone() -> None:
    gpus = Gpus("gpu1", "gpu2")
    gpus.mode["gpu1"] = "error"
    clock = Clock()
    chain_ = chain(gpus, [local("gpu1", "gpu2"), cloud()], clock)
    resolver = IngredientResolver(chain_, use_rules=False)
    for _ in range(8):
        assert [a.provider for a in resolver.resolve(QUERIES)] == ["local"]  # never the next provider
    assert gpus.chats["openai"] == 0
    assert gpus.chats["gpu2"] == 8
    assert gpus.chats["gpu1"] == 3  # three failed calls, then its own cool-down
    pool = chain_.providers[0].pool
    assert not pool.is_available(pool.endpoints[0]) and pool.is_available(pool.endpoints[1])
    gpus.mode["gpu1"] = "ok"
    clock.now += 31
    for _ in range(4):
        resolver.resolve(QUERIES)
    assert gpus.chats["gpu1"] == 5  # back in the rotation after the cool-down


def test_a_refused_connection_rechecks_health_at_once() -> None:
    gpus = Gpus("gpu1", "gpu2")
    chain_ = chain(gpus, [local("gpu1", "gpu2")])
    resolver = IngredientResolver(chain_)
    resolver.resolve(QUERIES)
    resolver.resolve(QUERIES)  # both endpoints used and health-checked once
    gpus.mode["gpu1"] = "refuse"  # the server died
    for _ in range(6):
        assert [a.provider for a in resolver.resolve(QUERIES)] == ["local"]
    pool = chain_.providers[0].pool
    assert not pool.endpoints[0].healthy  # the failed call forgot the cached health: rechecked
    assert gpus.chats["gpu2"] == 7


def test_all_endpoints_down_moves_to_the_next_provider() -> None:
    gpus = Gpus("gpu1", "gpu2")
    gpus.mode.update(gpu1="error", gpu2="error")
    chain_ = chain(gpus, [local("gpu1", "gpu2"), cloud()])
    answers = IngredientResolver(chain_, use_rules=False).resolve(QUERIES)
    assert [a.provider for a in answers] == ["openai"]
    assert gpus.chats["gpu1"] == 1 and gpus.chats["gpu2"] == 1  # each tried once, then on


def test_single_endpoint_still_retries_once() -> None:
    gpus = Gpus("gpu1")
    gpus.mode["gpu1"] = "error"
    chain_ = chain(gpus, [local("gpu1")])
    with pytest.raises(ProviderError):
        chain_.call(chain_.providers[0], _request(), lambda d: d)
    assert gpus.chats["gpu1"] == 2


def _request() -> JsonRequest:
    return JsonRequest(system="s", user="u", schema_name="x", schema={"type": "object"}, max_tokens=10)


def test_a_retry_that_succeeds_leaves_no_failure_on_the_endpoint() -> None:
    gpus = Gpus("gpu1")
    gpus.mode["gpu1"] = "error_once"
    chain_ = chain(gpus, [local("gpu1")])
    assert [a.provider for a in IngredientResolver(chain_).resolve(QUERIES)] == ["local"]
    assert gpus.chats["gpu1"] == 2 and chain_.providers[0].pool.endpoints[0].consecutive_failures == 0
