"""Menu extraction on the real development menus, per OCR engine, with the README's scorer.

    python -m loadtest.bench_menus [--engines rapidocr,tesseract] [--llm-url http://HOST:PORT/v1]
                                   [--menus ../shared/data/real-menus] [--cached]

For each engine and menu: the seconds OCR took, how many truth item names appear in the OCR
text, and item+price precision / recall / F1 of the rules path (and of the model path when
--llm-url is given: the provider chain with that one server, grounded against the text; an
answer the checks refuse falls back to the rules, as in the worker). Then the totals and the
median seconds per menu.

Each engine reads one small page before the first menu (starting RapidOCR's process is a
once-per-worker cost, not a per-menu one). --cached reuses the engines' readings saved in
loadtest/results/ocr-cache (untracked) by an earlier run, for working on the layout and the
parser without OCR'ing every time; timings then are those of the run that read the page.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from loadtest.menu_score import (
    REAL_MENUS,
    Score,
    TruthMenu,
    extracted_items,
    load_truth,
    names_in_text,
    score_items,
)
from model.chain import ProviderChain, ProviderConfig
from model.menu import MenuStructurer, parse_with_rules
from model.menu_layout import layout
from model.ocr import OcrResult, PageWords, Word, read_page

CACHE = Path(__file__).resolve().parent / "results" / "ocr-cache"


def _cache_path(data: bytes, engine: str) -> Path:
    return CACHE / f"{hashlib.sha256(data).hexdigest()[:16]}-{engine}.json"


def read_cached(data: bytes, engine: str, use_cache: bool) -> tuple[PageWords, float]:
    path = _cache_path(data, engine)
    if use_cache and path.exists():
        raw = json.loads(path.read_text())
        segments = [[Word(**w) for w in seg] for seg in raw["segments"]]
        page = PageWords(
            segments, raw["width"], raw["height"], raw["skew_degrees"], raw.get("currency_symbol")
        )
        return page, raw["seconds"]
    started = time.monotonic()
    page = read_page(data, engine=engine)  # type: ignore[arg-type]
    seconds = time.monotonic() - started
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**asdict(page), "seconds": seconds}))
    return page, seconds


def warm_up(engine: str) -> None:
    """One small page first, so the first menu's time does not include starting the engine
    (RapidOCR's child process loads its models once per worker process)."""
    img = Image.new("L", (400, 80), 255)
    ImageDraw.Draw(img).text((10, 30), "Soup 4.50", fill=0)
    out = io.BytesIO()
    img.save(out, "PNG")
    read_page(out.getvalue(), engine=engine)  # type: ignore[arg-type]


def llm_structurer(
    url: str, model: str, timeout_s: float, max_tokens: int, response_format: str
) -> MenuStructurer:
    config = ProviderConfig(
        name="local",
        model=model,
        base_url=url,
        api_key="not-needed",
        timeout_s=timeout_s,
        max_output_tokens=max_tokens,
        response_format=response_format,  # type: ignore[arg-type]
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    return MenuStructurer(ProviderChain([config]), max_tokens=max_tokens)


def bench(
    menus: list[TruthMenu], engines: list[str], use_cache: bool, structurer: MenuStructurer | None
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for engine in engines:
        rules_total, llm_total = Score(), Score()
        names_found = names_total = 0
        seconds: list[float] = []
        rows = []
        print(f"\n== engine {engine}")
        if not use_cache:
            warm_up(engine)
        for menu in menus:
            data = menu.image.read_bytes()
            page, took = read_cached(data, engine, use_cache)
            ocr = OcrResult(
                layout(page), page.width, page.height, engine, took, page.skew_degrees, page.currency_symbol
            )
            seconds.append(took)
            found = names_in_text(ocr.text, menu)
            names_found, names_total = names_found + found, names_total + len(menu.items)
            rules = score_items(extracted_items(parse_with_rules(ocr)), menu)
            rules_total.add(rules)
            row = {
                "menu": menu.name,
                "seconds": round(took, 2),
                "names_in_text": f"{found}/{len(menu.items)}",
                "rules": {"p": rules.precision, "r": rules.recall, "f1": rules.f1},
            }
            line = (
                f"{menu.name:26s} {took:6.1f} s  names {found:3d}/{len(menu.items):<3d} "
                f"rules P {rules.precision:.2f} R {rules.recall:.2f} F1 {rules.f1:.2f}"
            )
            if structurer is not None:
                started = time.monotonic()
                extraction = structurer.structure(ocr)
                llm = score_items(extracted_items(extraction.result), menu)
                llm_total.add(llm)
                row["llm"] = {
                    "p": llm.precision,
                    "r": llm.recall,
                    "f1": llm.f1,
                    "provider": extraction.provider,
                }
                line += (
                    f"  model P {llm.precision:.2f} R {llm.recall:.2f} F1 {llm.f1:.2f}"
                    f" ({extraction.provider}, {time.monotonic() - started:.0f} s)"
                )
            print(line, flush=True)
            rows.append(row)
        total = (
            f"{'ALL':26s} median {statistics.median(seconds):.1f} s  names {names_found}/{names_total}"
            f" ({names_found / max(names_total, 1):.1%})  rules P {rules_total.precision:.3f}"
            f" R {rules_total.recall:.3f} F1 {rules_total.f1:.3f}"
        )
        if structurer is not None:
            total += f"  model P {llm_total.precision:.3f} R {llm_total.recall:.3f} F1 {llm_total.f1:.3f}"
        print(total)
        report[engine] = {
            "menus": rows,
            "median_seconds": statistics.median(seconds),
            "names_in_text": names_found / max(names_total, 1),
            "rules_f1": rules_total.f1,
            **({"llm_f1": llm_total.f1} if structurer is not None else {}),
        }
    return report


class _FallbackReason(logging.Handler):
    """Prints why the model path fell back to the rules (the structurer logs it)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "menu_llm_failed":
            print(f"   model path fell back to the rules: {getattr(record, 'error', '')[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="rapidocr,tesseract")
    parser.add_argument("--menus", type=Path, default=REAL_MENUS)
    parser.add_argument("--cached", action="store_true", help="reuse earlier OCR readings")
    parser.add_argument("--only", help="comma-separated menu names (default: all)")
    parser.add_argument("--llm-url", help="an OpenAI-compatible server (the llama.cpp lane)")
    parser.add_argument("--llm-model", default="qwen2.5-1.5b-instruct")
    parser.add_argument("--llm-timeout", type=float, default=300.0)
    parser.add_argument("--llm-max-tokens", type=int, default=2000, help="fit the server's context")
    parser.add_argument(
        "--llm-response-format",
        default="json_schema",
        choices=["json_schema", "json_object"],
        help="json_object for servers without json_schema (llama-cpp-python's)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.getLogger("model.menu").addHandler(_FallbackReason())
    menus = load_truth(args.menus)
    if args.only:
        menus = [m for m in menus if m.name in args.only.split(",")]
    if not menus:
        raise SystemExit(f"no labelled menus in {args.menus}")
    structurer = (
        llm_structurer(
            args.llm_url, args.llm_model, args.llm_timeout, args.llm_max_tokens, args.llm_response_format
        )
        if args.llm_url
        else None
    )
    report = bench(menus, [e.strip() for e in args.engines.split(",") if e.strip()], args.cached, structurer)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
