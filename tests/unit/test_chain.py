"""The provider chain and the resolver over the real OpenAI SDK, with a scripted HTTP transport
(httpx.MockTransport) standing in for the servers: retries, splitting, fall-through, cool-down,
health gating and the request shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2 as httpx  # the openai SDK's HTTP library
import pytest

from core.errors import ProviderError
from model.chain import JsonRequest, ProviderChain, ProviderConfig
from model.ingredients import IngredientQuery, IngredientResolver
from model.prompts import parse_ingredient_user_message
from model.rules import resolve_with_rules
from model.schemas import validate_ingredient_names

Handler = Callable[[str, dict[str, Any]], httpx.Response]


def local(fmt: str = "json_schema", max_out: int = 1000) -> ProviderConfig:
    return ProviderConfig(
        name="local", model="qwen3-8b-instruct", base_url="http://local.test/v1", api_key="x", timeout_s=2,
        max_output_tokens=max_out, response_format=fmt,  # type: ignore[arg-type]
        extra_body={"chat_template_kwargs": {"enable_thinking": False}}, health_url="http://local.test/health",
    )  # fmt: skip


def cloud() -> ProviderConfig:
    return ProviderConfig(
        name="openai",
        model="gpt-x",
        base_url="http://openai.test/v1",
        api_key="k",
        timeout_s=2,
        max_output_tokens=1000,
    )


class FakeServers:
    """Routes by host; records every chat request body."""

    def __init__(self) -> None:
        self.chat: dict[str, Handler] = {}
        self.health_status = 200
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.health_checks = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if request.url.path == "/health":
            self.health_checks += 1
            return httpx.Response(self.health_status)
        body = json.loads(request.content)
        self.requests.append((host, body))
        return self.chat[host](host, body)

    def calls(self, host: str) -> int:
        return sum(1 for h, _ in self.requests if h == host)


def rules_answer(body: dict[str, Any], drop_last: bool = False) -> httpx.Response:
    lines = parse_ingredient_user_message(body["messages"][-1]["content"])
    out = [resolve_with_rules(line).canonical_name for line in lines]  # None where rejected
    if drop_last:
        out = out[:-1]
    return completion(json.dumps({"names": out}))


def completion(content: str, finish: str = "stop") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
        },
    )  # fmt: skip


def good(_: str, body: dict[str, Any]) -> httpx.Response:
    return rules_answer(body)


def broken_json(_: str, body: dict[str, Any]) -> httpx.Response:
    return completion('{"names": ["eg')


def server_error(_: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(500, json={"error": {"message": "boom"}})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(servers: FakeServers, configs: list[ProviderConfig], clock: Clock | None = None) -> ProviderChain:
    http = httpx.Client(transport=httpx.MockTransport(servers))
    return ProviderChain(configs, cooldown_seconds=30, clock=clock or Clock(), http_client=http)


QUERIES = [IngredientQuery.of(t) for t in ["2 cups flour", "3 large eggs", "paper towels", "1 tsp salt"]]


def test_valid_answer_comes_from_local_and_request_has_the_contract_shape() -> None:
    servers = FakeServers()
    servers.chat["local"] = good
    resolver = IngredientResolver(make(servers, [local()]), use_rules=True)
    answers = resolver.resolve(QUERIES)
    assert [a.provider for a in answers] == ["local"] * 4
    assert [a.canonical_name for a in answers] == ["flour", "egg", None, "salt"]
    assert answers[2].status == "rejected" and answers[2].reason
    assert answers[0].unit == "cup" and answers[0].quantity == 2.0
    ((_, body),) = servers.requests  # one batched request for all four
    assert body["temperature"] == 0
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "ingredient_names"
    assert json.loads(body["messages"][-1]["content"]) == [q.text for q in QUERIES]  # the lines only


def test_json_object_form_for_llama_cpp_servers() -> None:
    servers = FakeServers()
    servers.chat["local"] = good
    IngredientResolver(make(servers, [local(fmt="json_object")])).resolve(QUERIES[:1])
    fmt = servers.requests[0][1]["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["schema"]["title"] == "ingredient_names" and "names" in fmt["schema"]["properties"]


def test_invalid_answers_retry_once_then_split_then_fall_to_rules() -> None:
    servers = FakeServers()
    servers.chat["local"] = lambda h, body: rules_answer(body, drop_last=True)  # always one answer short
    clock = Clock()
    resolver = IngredientResolver(make(servers, [local()], clock), use_rules=True)
    answers = resolver.resolve(QUERIES)
    assert [a.status for a in answers] == ["resolved", "resolved", "rejected", "resolved"]
    assert {a.provider for a in answers} == {"rules"}
    # 4 items: whole chunk (2 tries), then halves (2 tries each) -> 3 failures -> cool-down
    assert servers.calls("local") == 6
    assert not resolver.chain.is_available(resolver.chain.providers[0])
    clock.now += 31
    servers.chat["local"] = good
    assert {a.provider for a in resolver.resolve(QUERIES)} == {"local"}


def test_split_isolates_the_item_a_model_cannot_answer() -> None:
    servers = FakeServers()

    def chokes_on_eggs(_: str, body: dict[str, Any]) -> httpx.Response:
        lines = parse_ingredient_user_message(body["messages"][-1]["content"])
        if any("eggs" in line for line in lines):
            return completion("not json at all")
        return rules_answer(body)

    servers.chat["local"] = chokes_on_eggs
    chain = make(servers, [local()])
    answers = IngredientResolver(chain).resolve(QUERIES)
    assert [a.provider for a in answers] == ["local", "rules", "local", "local"]


def test_transport_errors_move_on_to_the_next_provider() -> None:
    servers = FakeServers()
    servers.chat["local"] = server_error
    servers.chat["openai"] = good
    answers = IngredientResolver(make(servers, [local(), cloud()])).resolve(QUERIES)
    assert {a.provider for a in answers} == {"openai"}
    assert servers.calls("local") == 2  # one retry, no split for a server error
    openai_body = next(b for h, b in servers.requests if h == "openai")
    assert "chat_template_kwargs" not in openai_body


def test_unhealthy_local_is_skipped_without_a_chat_call() -> None:
    servers = FakeServers()
    servers.health_status = 503
    servers.chat["local"] = good
    answers = IngredientResolver(make(servers, [local()])).resolve(QUERIES)
    assert {a.provider for a in answers} == {"rules"}
    assert servers.calls("local") == 0 and servers.health_checks == 1


def test_without_rules_unanswerable_items_fail_with_the_error() -> None:
    servers = FakeServers()
    servers.chat["local"] = broken_json
    answers = IngredientResolver(make(servers, [local()]), use_rules=False).resolve(QUERIES[:2])
    assert [a.status for a in answers] == ["failed", "failed"]
    assert all(a.reason and "not JSON" in a.reason for a in answers)


def test_truncated_answer_is_invalid() -> None:
    servers = FakeServers()
    servers.chat["local"] = lambda h, b: completion('{"names": []}', finish="length")
    chain = make(servers, [local()])
    request = JsonRequest("s", "u", "x", {"type": "object"}, max_tokens=10)
    with pytest.raises(ProviderError) as err:
        chain.complete_json(request, lambda d: validate_ingredient_names(d, 1))
    assert err.value.provider == "chain" and err.value.kind == "exhausted"
    assert "cut off" in str(err.value)


def test_complete_json_returns_value_and_call_details() -> None:
    servers = FakeServers()
    servers.chat["openai"] = lambda h, b: completion('```json\n{"ok": true}\n```')
    chain = make(servers, [cloud()])
    value, call = chain.complete_json(JsonRequest("s", "u", "x", {"type": "object"}, 50), lambda d: d["ok"])
    assert value is True
    assert (call.provider, call.model, call.prompt_tokens, call.completion_tokens) == (
        "openai",
        "gpt-x",
        10,
        20,
    )
    assert servers.requests[0][1]["max_tokens"] == 50


def test_model_names_are_tidied_into_the_shared_vocabulary_and_numbers_are_the_rules() -> None:
    servers = FakeServers()
    servers.chat["local"] = lambda h, b: completion(json.dumps({"names": ["Scallions"]}))
    (answer,) = IngredientResolver(make(servers, [local()])).resolve(
        [IngredientQuery.of("2 tbsp sliced scalions")]
    )
    assert (answer.canonical_name, answer.unit, answer.quantity, answer.provider) == (
        "green onion", "tablespoon", 2.0, "local",
    )  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [{"names": "egg"}, {"names": [1]}, {"names": ["<b>egg</b>"]}, {"names": [""]}, {"names": ["egg", "salt"]},
     {"names": []}, {"names": ["egg"], "extra": 1}, {"items": ["egg"]}, ["egg"], {"names": ["x" * 81]}],
)  # fmt: skip
def test_strict_validation_rejects_out_of_contract_answers(bad: Any) -> None:
    assert validate_ingredient_names({"names": [" egg "]}, 1) == ["egg"]
    assert validate_ingredient_names({"names": [None]}, 1) == [None]
    with pytest.raises(ValueError):
        validate_ingredient_names(bad, 1)
