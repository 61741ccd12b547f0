"""The simulator's HTTP app (FastAPI): OpenAI chat completions, /v1/models, /health,
/metrics with vLLM's metric names, and /admin endpoints for fault windows and counters."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from model.schemas import INGREDIENT_SCHEMA_NAME
from model.sim import answers
from model.sim.engine import Engine
from model.sim.faults import FaultRates, Faults
from model.sim.ingredient_answers import reject_every_item
from model.sim.profiles import PROFILES

log = logging.getLogger(__name__)

FINGERPRINT = "sous-sim"
SIM_HEADERS = {"x-sous-simulated": "true"}


@dataclass(frozen=True)
class SimConfig:
    profile: str = "instant"
    served_model_name: str = "qwen3-8b-instruct"
    faults: FaultRates = field(default_factory=FaultRates)
    seed: int | None = None
    time_scale: float = 1.0
    max_num_seqs: int | None = None
    hang_seconds: float = 600.0  # how long a "timeout" fault holds the request


class FaultWindow(BaseModel):
    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    rejected_rate: float = Field(default=0.0, ge=0, le=1)
    duration_s: float | None = Field(default=None, ge=0)


class HealthSwitch(BaseModel):
    healthy: bool


class SimMetrics:
    def __init__(self, model: str, profile: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "simulated"]
        self.base = {"model_name": model, "simulated": "true"}
        r = self.registry
        self.running = Gauge("vllm:num_requests_running", "Requests running (simulated)", labels, registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "Requests waiting (simulated)", labels, registry=r)
        self.success = Counter(
            "vllm:request_success", "Finished requests (simulated)", [*labels, "finished_reason"], registry=r
        )
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Prefill tokens (simulated)", labels, registry=r)
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Output tokens (simulated)", labels, registry=r
        )
        buckets = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds", "E2E latency (simulated)", labels, buckets=buckets, registry=r
        )
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds", "TTFT (simulated)", labels, buckets=buckets, registry=r
        )
        self.queue = Histogram(
            "vllm:request_queue_time_seconds", "Queue time (simulated)", labels, buckets=buckets, registry=r
        )
        self.tpot = Histogram(
            "vllm:time_per_output_token_seconds", "Time per output token (simulated)", labels,
            buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5), registry=r,
        )  # fmt: skip
        self.chat_requests = Counter(
            "sous_sim_chat_requests",
            "Chat requests received (simulated server)",
            ["outcome", "simulated"],
            registry=r,
        )
        info = Gauge("sous_sim_info", "Simulator profile", ["profile", "model_name", "simulated"], registry=r)
        info.labels(profile, model, "true").set(1)
        self.received = 0
        self.by_outcome: dict[str, int] = {}

    def count(self, outcome: str) -> None:
        self.chat_requests.labels(outcome, "true").inc()
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1


def create_app(config: SimConfig) -> FastAPI:
    if config.profile not in PROFILES:
        raise ValueError(f"unknown profile {config.profile!r}; choose one of {sorted(PROFILES)}")
    profile = PROFILES[config.profile]
    engine = Engine(profile, time_scale=config.time_scale, max_num_seqs=config.max_num_seqs)
    faults = Faults(config.faults, seed=config.seed)
    m = SimMetrics(config.served_model_name, profile.name)
    schemas = answers.registered()
    app = FastAPI(title="sous sim (simulated vLLM)", docs_url=None, redoc_url=None)
    log.info("sim_ready", extra={"profile": profile.name, "schemas": schemas, "simulated": True})

    @app.middleware("http")
    async def label_simulated(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SIM_HEADERS)
        return response

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200 if faults.healthy else 503)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": config.served_model_name, "object": "model", "owned_by": "sous-sim (simulated)",
                "created": 0, "max_model_len": 32768, "simulated": True}  # fmt: skip
        return {"object": "list", "data": [card]}

    @app.get("/metrics")
    async def metrics() -> Response:
        m.running.labels(**m.base).set(engine.running)
        m.waiting.labels(**m.base).set(engine.waiting)
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/admin/stats")
    async def stats() -> dict[str, Any]:
        return {"simulated": True, "profile": profile.name, "chat_requests": m.received,
                "by_outcome": m.by_outcome, "running": engine.running, "waiting": engine.waiting}  # fmt: skip

    @app.get("/admin/faults")
    async def get_faults() -> dict[str, Any]:
        return faults.describe()

    @app.post("/admin/faults")
    async def set_faults(body: FaultWindow) -> Response:
        try:
            rates = FaultRates(body.error_rate, body.timeout_rate, body.malformed_rate, body.rejected_rate)
        except ValueError as exc:
            return JSONResponse({"error": str(exc), "code": "INVALID_INPUT"}, status_code=400)
        faults.open_window(rates, body.duration_s)
        log.info("sim_faults", extra={**faults.describe(), "duration_s": body.duration_s})
        return JSONResponse(faults.describe())

    @app.post("/admin/health")
    async def set_health(body: HealthSwitch) -> dict[str, Any]:
        faults.healthy = body.healthy
        return faults.describe()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        m.received += 1
        try:
            body = await request.json()
            messages = body["messages"]
            schema_name, schema = _requested_schema(body.get("response_format"))
        except (ValueError, KeyError, TypeError) as exc:
            m.count("bad_request")
            return _error(400, f"invalid request: {exc}")
        fault = faults.draw()
        if fault == "error":
            m.count("fault_error")
            return _error(500, "simulated internal error (fault injection)")
        if fault == "timeout":
            m.count("fault_timeout")
            await asyncio.sleep(config.hang_seconds)
            return _error(504, "simulated timeout (fault injection)")
        try:
            # Answering runs the rules provider (CPU work): off the event loop, so /health and
            # the streams in flight keep answering while it runs.
            value = await asyncio.to_thread(answers.answer, schema_name, messages, schema)
        except answers.UnknownSchema as exc:
            m.count("bad_request")
            return _error(400, str(exc))
        except ValueError as exc:
            m.count("bad_request")
            return _error(400, f"cannot answer: {exc}")
        if fault == "rejected" and schema_name == INGREDIENT_SCHEMA_NAME:
            value = reject_every_item(value)
        # Spaced like the llama.cpp lane's answers, on which COMPLETION_CHARS_PER_TOKEN was measured.
        content = json.dumps(value, ensure_ascii=False)
        if fault == "malformed":
            content = content[: max(1, len(content) // 2)] + ' "oops'  # cut mid-object
        prompt_tokens = _tokens(json.dumps(messages, ensure_ascii=False))
        completion_tokens = _completion_tokens(content)
        finish = "stop"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(max_tokens, int) and 0 < max_tokens < completion_tokens:
            content, completion_tokens, finish = (
                content[: int(max_tokens * COMPLETION_CHARS_PER_TOKEN)],
                max_tokens,
                "length",
            )
        timing = await engine.generate(prompt_tokens, completion_tokens)
        m.count(fault if fault in ("malformed", "rejected") else "ok")
        _observe(m, timing, prompt_tokens, completion_tokens, finish)
        return JSONResponse(
            {
                "id": f"chatcmpl-sim-{uuid.uuid4().hex[:16]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or config.served_model_name,
                "system_fingerprint": FINGERPRINT,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    return app


def _requested_schema(fmt: Any) -> tuple[str | None, dict[str, Any]]:
    """(name, schema) from response_format: json_schema, or llama.cpp's json_object+schema."""
    if not isinstance(fmt, dict):
        return None, {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        return spec.get("name"), spec.get("schema") or {}
    schema = fmt.get("schema") or {}
    return (schema.get("title") if isinstance(schema, dict) else None), schema


# Calibrated on the llama.cpp lane's `usage` (BENCHMARKS.md, issue 14): Qwen2.5-1.5B answered
# the ingredient batches at 2.64 characters per output token in the old schema (46 tokens a
# line) and 2.85 in the names-only one (5 a line); Qwen3 shares the tokenizer. One figure for
# both keeps the simulator's before/after comparison honest.
COMPLETION_CHARS_PER_TOKEN = 2.75
PROMPT_CHARS_PER_TOKEN = 4.0  # English text and JSON; prefill matters little on these profiles


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / PROMPT_CHARS_PER_TOKEN))


def _completion_tokens(content: str) -> int:
    return max(1, math.ceil(len(content) / COMPLETION_CHARS_PER_TOKEN))


def _observe(m: SimMetrics, timing: Any, prompt: int, completion: int, finish: str) -> None:
    m.success.labels(**m.base, finished_reason=finish).inc()
    m.prompt_tokens.labels(**m.base).inc(prompt)
    m.generation_tokens.labels(**m.base).inc(completion)
    m.e2e.labels(**m.base).observe(timing.e2e_s)
    m.ttft.labels(**m.base).observe(timing.ttft_s)
    m.queue.labels(**m.base).observe(timing.queue_s)
    if completion > 1:
        m.tpot.labels(**m.base).observe((timing.e2e_s - timing.ttft_s) / (completion - 1))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "sim_error", "code": status}, "simulated": True},
        status_code=status,
    )
