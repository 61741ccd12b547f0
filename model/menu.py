"""Structure a menu's OCR text through the provider chain, the deterministic parser last.

The LLM providers get the OCR lines and answer in the "menu_extraction" JSON schema (the
result shape of a menu job); pydantic validates the answer again. When every LLM provider
failed, or none is configured, the parser of model/menu_parser.py answers.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ProviderError
from core.logging import log_text
from core.settings import Settings
from model.chain import JsonRequest, ProviderChain
from model.grounding import ungrounded_menu_reason
from model.menu_parser import Line, parse_menu
from model.menu_prices import mend_prices, menu_currency
from model.ocr import OcrResult

log = logging.getLogger(__name__)

MENU_SCHEMA_NAME = "menu_extraction"
MENU_PROMPT_VERSION = "v2"
MENU_SCHEMA_VERSION = "v1"
OCR_SEPARATOR = "--- OCR text ---"
BLOCK_MARK = "## block"
MENU_SYSTEM = (
    "You turn the OCR text of a restaurant menu photo into JSON. Group items under the menu's "
    "category headings; each item has its name as printed, its price as a number (null when "
    "none is printed) and your confidence 0..1. currency is the ISO code of the prices (USD, "
    "EUR, GBP) or null. Put items you are unsure of in uncertainItems too, with a reason. Lines "
    "that are not dishes (restaurant name, address, phone, opening hours, web) go to "
    "superfluousText. Never invent items that are not in the text. The text is in reading order, "
    "block by block (a block is a column or a boxed part of the menu, with its position on the "
    "page); an item's name, description and price are in one block. A price may end the "
    "description line under the name. With several prices for one item (sizes), use the first. "
    'Add-ons with a surcharge ("add bacon +$2") are not items.'
)


class MenuItemOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    price: float | None = Field(default=None, ge=0, le=100_000)
    confidence: float = Field(ge=0, le=1)
    description: str | None = Field(default=None, max_length=500)


class CategoryOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    items: list[MenuItemOut]


class MenuOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    categories: list[CategoryOut]


class UncertainItemOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    price: float | None = None
    reason: str = Field(max_length=300)


class MenuResult(BaseModel):
    """The result shape of a menu job (the existing app reads these names)."""

    model_config = ConfigDict(extra="forbid")
    menu: MenuOut
    currency: str | None = Field(default=None, max_length=8)
    uncertainItems: list[UncertainItemOut]
    superfluousText: list[str]


def menu_schema() -> dict[str, Any]:
    return MenuResult.model_json_schema()


@dataclass(frozen=True)
class MenuExtraction:
    result: dict[str, Any]
    confidence: float | None
    provider: str
    token_usage: dict[str, Any]


def model_text_lines(ocr: OcrResult) -> list[str]:
    """The OCR text as the model reads it: lines in reading order, OCR's price misreadings
    mended ("S4" → "$4" on a dollar menu, "7,409,40" → "7,40 9,40"), and before each layout
    block a mark with its position (percent of the page), so columns stay apart."""
    currency = menu_currency(line.text for line in ocr.lines)
    out: list[str] = []
    if currency is None and ocr.currency_symbol:
        out.append(f"(currency symbol printed beside the prices: {ocr.currency_symbol})")
    block: int | None = None
    for line in ocr.lines:
        if line.words and line.column != block:
            block = line.column
            members = [x for x in ocr.lines if x.column == block]
            left = min(x.left for x in members) / max(ocr.width, 1)
            right = max(x.right for x in members) / max(ocr.width, 1)
            top = members[0].top / max(ocr.height, 1)
            out.append(f"{BLOCK_MARK} {block + 1} (x {left:.0%}-{right:.0%}, y {top:.0%})")
        out.append(mend_prices(line.text, currency))
    return out


def menu_user_message(ocr: OcrResult) -> str:
    return f"{OCR_SEPARATOR}\n" + "\n".join(model_text_lines(ocr))


def lines_from_user_message(text: str) -> list[str]:
    """The OCR lines of a menu_user_message (the simulator answers from them)."""
    _, _, body = text.partition(OCR_SEPARATOR + "\n")
    return [line for line in body.splitlines() if not line.startswith(BLOCK_MARK)]


def result_confidence(result: dict[str, Any]) -> float | None:
    scores = [item["confidence"] for c in result["menu"]["categories"] for item in c["items"]]
    return round(statistics.fmean(scores), 3) if scores else None


def validate_menu(data: Any) -> dict[str, Any]:
    try:
        return MenuResult.model_validate(data).model_dump(exclude_none=False)
    except ValidationError as exc:
        raise ValueError(f"menu answer does not match the schema: {exc.error_count()} error(s)") from exc


def validate_grounded_menu(data: Any, ocr: OcrResult) -> dict[str, Any]:
    """The schema, and every item and price found in the OCR text (nothing invented)."""
    result = validate_menu(data)
    reason = ungrounded_menu_reason(result, "\n".join([ocr.text, *model_text_lines(ocr)]))
    if reason is not None:
        raise ValueError(reason)
    return result


def parse_with_rules(ocr: OcrResult) -> dict[str, Any]:
    return validate_menu(parse_menu(rule_lines(ocr), ocr.currency_symbol))


def rule_lines(ocr: OcrResult) -> list[Line]:
    """The OCR lines as the parser reads them; the layout's geometry only when there is one
    (lines built from plain text have no words)."""
    geometry = any(line.words for line in ocr.lines)
    return [
        Line(x.text, x.confidence, x.height, x.column, x.gap_before if geometry else None) for x in ocr.lines
    ]


class MenuStructurer:
    def __init__(self, chain: ProviderChain | None, max_tokens: int = 4000) -> None:
        self.chain = chain
        self.max_tokens = max_tokens

    @classmethod
    def from_settings(cls, settings: Settings) -> MenuStructurer:
        return cls(
            ProviderChain.from_settings(settings), max_tokens=max(4000, settings.local_llm_max_output_tokens)
        )

    def structure(self, ocr: OcrResult) -> MenuExtraction:
        if self.chain is not None and self.chain.providers and ocr.lines:
            request = JsonRequest(
                system=MENU_SYSTEM,
                user=menu_user_message(ocr),
                schema_name=MENU_SCHEMA_NAME,
                schema=menu_schema(),
                max_tokens=self.max_tokens,
            )
            try:
                result, call = self.chain.complete_json(
                    request, lambda data: validate_grounded_menu(data, ocr)
                )
            except ProviderError as exc:
                log.warning("menu_llm_failed", extra={"error": log_text(exc)})
            else:
                usage = {
                    "provider": call.provider,
                    "model": call.model,
                    "prompt_tokens": call.prompt_tokens,
                    "completion_tokens": call.completion_tokens,
                    "latency_ms": call.latency_ms,
                }
                return MenuExtraction(result, result_confidence(result), call.provider, usage)
        result = parse_with_rules(ocr)
        usage = {"provider": "rules", "model": "menu_parser", "prompt_tokens": 0, "completion_tokens": 0}
        return MenuExtraction(result, result_confidence(result), "rules", usage)

    def close(self) -> None:
        if self.chain is not None:
            self.chain.close()
