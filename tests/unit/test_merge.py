"""The rules and the model merged per line: the rules read quantity and unit, the model names
the food where the rules are unsure, and a model's "not food" counts only where the rules
agree (otherwise the answer is invalid: retry, split, the rules)."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx

from model.ingredients import IngredientQuery, IngredientResolver
from model.prompts import parse_ingredient_user_message
from model.rules import resolve_with_rules
from tests.unit.test_chain import FakeServers, completion, local, make


def names_for(table: dict[str, str | None]) -> Any:
    """A scripted model: the name of each line from `table` (lines not in it: the rules' name)."""

    def answer(_: str, body: dict[str, Any]) -> httpx.Response:
        lines = parse_ingredient_user_message(body["messages"][-1]["content"])
        names = [table[line] if line in table else resolve_with_rules(line).canonical_name for line in lines]
        return completion(json.dumps({"names": names}))

    return answer


def sent_lines(servers: FakeServers) -> list[str]:
    return [
        line
        for _, body in servers.requests
        for line in parse_ingredient_user_message(body["messages"][-1]["content"])
    ]


def test_a_model_name_replaces_the_rules_only_where_the_rules_are_unsure() -> None:
    servers = FakeServers()
    servers.chat["local"] = names_for(
        {"1 pound ground turkey": "turkey", "2 tbsp sliced scalions": "scallion greens"}
    )
    confident, unsure = IngredientResolver(make(servers, [local()])).resolve(
        [IngredientQuery.of("1 pound ground turkey"), IngredientQuery.of("2 tbsp sliced scalions")]
    )
    # The rules know "ground turkey" (the model's plainer "turkey" does not replace it) ...
    assert (confident.canonical_name, confident.quantity, confident.unit) == ("ground turkey", 1.0, "pound")
    # ... and only guess the misspelling (a near spelling): the model's name, the rules' numbers.
    assert (unsure.canonical_name, unsure.quantity, unsure.unit) == ("scallion greens", 2.0, "tablespoon")
    assert unsure.provider == "local"


def test_quantity_and_unit_are_always_the_rules() -> None:
    servers = FakeServers()
    servers.chat["local"] = names_for({"2 ½ cups sifted floour": "all-purpose flour"})
    (answer,) = IngredientResolver(make(servers, [local()])).resolve(
        [IngredientQuery.of("2 ½ cups sifted floour")]
    )
    assert (answer.canonical_name, answer.quantity, answer.unit) == ("all-purpose flour", 2.5, "cup")


def test_not_food_where_the_rules_read_food_is_invalid_and_the_rules_answer() -> None:
    servers = FakeServers()
    servers.chat["local"] = names_for({"3 anchovy fillets packed in oil": None})
    (answer,) = IngredientResolver(make(servers, [local()])).resolve(
        [IngredientQuery.of("3 anchovy fillets packed in oil")]
    )
    assert (answer.status, answer.canonical_name, answer.provider) == ("resolved", "anchovy fillet", "rules")
    assert servers.calls("local") == 2  # asked and retried (both invalid), then the rules


def test_not_food_where_the_rules_agree_is_a_rejection_with_the_rules_reason() -> None:
    servers = FakeServers()
    servers.chat["local"] = names_for({"2 rolls paper towels": None})
    (answer,) = IngredientResolver(make(servers, [local()])).resolve(
        [IngredientQuery.of("2 rolls paper towels")]
    )
    assert (answer.status, answer.provider) == ("rejected", "local")
    assert answer.reason and answer.reason.startswith("not a food item")


def test_a_named_non_food_thing_stays_rejected_when_the_model_calls_it_food() -> None:
    servers = FakeServers()
    servers.chat["local"] = names_for({"4 wooden skewers": "skewer"})
    (answer,) = IngredientResolver(make(servers, [local()])).resolve([IngredientQuery.of("4 wooden skewers")])
    assert answer.status == "rejected" and answer.reason and "skewer" in answer.reason


def test_one_wrong_rejection_in_a_batch_splits_it_and_the_rest_keep_the_model() -> None:
    servers = FakeServers()
    lines = ["1 tsp salt", "6 tablespoons very cold heavy cream", "2 cups flour", "3 eggs"]
    servers.chat["local"] = names_for(
        {
            "1 tsp salt": "salt",
            "6 tablespoons very cold heavy cream": None,
            "2 cups flour": "flour",
            "3 eggs": "egg",
        }
    )
    answers = IngredientResolver(make(servers, [local()])).resolve([IngredientQuery.of(t) for t in lines])
    assert [a.provider for a in answers] == ["local", "rules", "local", "local"]
    assert [a.status for a in answers] == ["resolved"] * 4


def test_skip_confident_sends_only_the_lines_the_rules_are_unsure_of() -> None:
    servers = FakeServers()
    servers.chat["local"] = names_for({"2 tbsp sliced scalions": "scallion greens"})
    lines = ["2 cups flour", "2 tbsp sliced scalions", "", "<b>x</b>", "5 cracked grains of paradise"]
    resolver = IngredientResolver(make(servers, [local()]), use_rules=True, skip_confident=True)
    answers = resolver.resolve([IngredientQuery.of(t) for t in lines])
    assert sent_lines(servers) == ["2 tbsp sliced scalions"]  # a near spelling; the rest the rules know
    assert [a.provider for a in answers] == ["rules", "local", "rules", "rules", "rules"]
    assert (
        resolver.usage.requests == 1 and resolver.usage.lines == 1 and resolver.usage.completion_tokens == 20
    )
    # Off: every line but the junk goes to the model.
    servers.requests.clear()
    IngredientResolver(make(servers, [local()]), skip_confident=False).resolve(
        [IngredientQuery.of(t) for t in lines]
    )
    assert sent_lines(servers) == ["2 cups flour", "2 tbsp sliced scalions", "5 cracked grains of paradise"]


def test_every_request_starts_with_the_same_bytes_for_prefix_caching() -> None:
    servers = FakeServers()
    servers.chat["local"] = names_for({})
    resolver = IngredientResolver(make(servers, [local(max_out=40)]))  # 2 lines per request
    resolver.resolve([IngredientQuery.of(t) for t in ["2 cups flour", "3 eggs", "1 tsp salt", "1 onion"]])
    assert len(servers.requests) == 2
    (_, first), (_, second) = servers.requests
    assert first["messages"][0] == second["messages"][0]  # the system prompt, byte for byte
    assert first["response_format"] == second["response_format"]
    assert first["messages"][1] != second["messages"][1]  # only the lines differ
