"""Menu structuring through the provider chain against the simulator (a real process): the
"menu_extraction" schema is answered by the LLM provider; when it fails, the parser answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import Settings
from devtools.sim_process import SimProcess
from model.menu import MenuStructurer
from model.ocr import OcrLine, OcrResult

MENU_LINES = [
    "Cafe Olive",
    "STARTERS",
    "Tomato Soup ...... $6.50",
    "Garlic Bread $4.00",
    "Tel: (555) 123-4567",
]


def ocr_result(lines: list[str]) -> OcrResult:
    return OcrResult([OcrLine(t, 0.9, 20.0, 0, ()) for t in lines], 800, 600)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(profile="instant", args=("--seed", "1")) as proc:
        yield proc


def structurer(sim: SimProcess) -> MenuStructurer:
    settings = Settings(
        local_llm_enabled=True, local_llm_base_url=sim.base_url, llm_providers="local,rules",
        provider_cooldown_seconds=0, local_llm_timeout_ms=5000,
    )  # fmt: skip
    return MenuStructurer.from_settings(settings)


def test_the_llm_provider_answers_in_the_menu_schema(sim: SimProcess) -> None:
    sim.set_faults()
    out = structurer(sim).structure(ocr_result(MENU_LINES))
    assert out.provider == "local"
    assert out.token_usage["model"] == "qwen3-8b-instruct" and out.token_usage["completion_tokens"] > 0
    items = [(i["name"], i["price"]) for c in out.result["menu"]["categories"] for i in c["items"]]
    assert items == [("Tomato Soup", 6.5), ("Garlic Bread", 4.0)]
    assert out.result["currency"] == "USD" and "Tel: (555) 123-4567" in out.result["superfluousText"]


def test_the_parser_answers_when_the_model_fails(sim: SimProcess) -> None:
    sim.set_faults(error_rate=1.0)
    try:
        out = structurer(sim).structure(ocr_result(MENU_LINES))
    finally:
        sim.set_faults()
    assert out.provider == "rules" and out.token_usage["provider"] == "rules"
    assert [c["name"] for c in out.result["menu"]["categories"]] == ["Starters"]
    assert out.confidence == pytest.approx(0.9)
