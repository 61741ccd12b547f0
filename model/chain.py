"""The provider chain: JSON-schema chat completions over the OpenAI SDK.

One client type reaches local vLLM (or the simulator, or llama.cpp), OpenAI and Gemini's
OpenAI-compatible endpoint. Each call: temperature 0, Qwen3 non-thinking for the local server,
the schema as `response_format` (json_schema, or json_object+schema for llama.cpp servers),
retry once, then the next provider. The local provider may have several endpoints
(LOCAL_LLM_BASE_URL, comma-separated; model/endpoints.py): a call goes to the least busy one and
its retry to another, before the chain moves on to the next provider. An endpoint that fails
`FAILURES_BEFORE_COOLDOWN` calls in a row is skipped for PROVIDER_COOLDOWN_SECONDS, and one whose
/health fails is skipped until it passes; a provider is skipped when all its endpoints are.
The deterministic last provider belongs to the caller (rules, or the menu parser).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx2  # the HTTP library of the openai SDK (3.x); its clients plug into the SDK
import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from core.errors import ProviderError
from core.logging import log_text
from core.settings import Settings
from model import metrics
from model.endpoints import Endpoint, EndpointPool, health_url_for, split_base_urls

log = logging.getLogger(__name__)

T = TypeVar("T")
ResponseFormat = Literal["json_schema", "json_object"]
LLM_PROVIDERS = ("local", "openai", "gemini")
HEALTH_TIMEOUT_SECONDS = 2.0
ERROR_TEXT_CHARS = 300  # how much of a server's or the SDK's error a ProviderError quotes
ANSWER_QUOTE_CHARS = 120  # how much of an answer that is not JSON a ProviderError quotes


@dataclass(frozen=True)
class JsonRequest:
    system: str
    user: str
    schema_name: str
    schema: dict[str, Any]
    max_tokens: int


@dataclass(frozen=True)
class ProviderCall:
    provider: str
    model: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    attempts: int = 1


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    model: str
    base_url: str | None
    api_key: str
    timeout_s: float
    max_output_tokens: int
    response_format: ResponseFormat = "json_schema"
    extra_body: dict[str, Any] | None = None
    health_url: str | None = None  # checked before calls when set
    # More servers of the same model beside base_url (each health-checked at its own /health).
    extra_base_urls: tuple[str, ...] = ()

    def endpoint_urls(self) -> list[tuple[str | None, str | None]]:
        """(base URL, health URL) of every endpoint, base_url first."""
        out = [(self.base_url, self.health_url)]
        for url in self.extra_base_urls:
            out.append((url, health_url_for(url) if self.health_url else None))
        return out


@dataclass
class Provider:
    config: ProviderConfig
    pool: EndpointPool

    @property
    def name(self) -> str:
        return self.config.name


def configs_from_settings(settings: Settings) -> list[ProviderConfig]:
    """The enabled LLM providers in LLM_PROVIDERS order (a provider without key or flag is skipped)."""
    timeout_s = settings.local_llm_timeout_ms / 1000
    max_tokens = settings.local_llm_max_output_tokens
    # The cloud providers' (API key, model, base URL).
    cloud: dict[str, tuple[str | None, str, str | None]] = {
        "openai": (settings.openai_api_key, settings.openai_model, settings.openai_base_url),
        "gemini": (settings.gemini_api_key, settings.gemini_model, settings.gemini_base_url),
    }
    out: list[ProviderConfig] = []
    for name in settings.provider_order:
        api_key, model, base_url = cloud.get(name, (None, "", None))
        if name == "local" and settings.local_llm_enabled and settings.local_llm_base_url:
            base, *more = split_base_urls(settings.local_llm_base_url)
            out.append(
                ProviderConfig(
                    name="local",
                    model=settings.local_llm_model,
                    base_url=base,
                    api_key=settings.local_llm_api_key or "not-needed",
                    timeout_s=timeout_s,
                    max_output_tokens=max_tokens,
                    response_format=settings.local_llm_response_format,
                    extra_body={"chat_template_kwargs": {"enable_thinking": False}},
                    health_url=health_url_for(base),
                    extra_base_urls=tuple(more),
                )
            )
        elif api_key:
            out.append(ProviderConfig(name, model, base_url, api_key, timeout_s, max_tokens))
    return out


class ProviderChain:
    def __init__(
        self,
        configs: list[ProviderConfig],
        cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        http_client: httpx2.Client | None = None,
    ) -> None:
        """`http_client` replaces the transport of every call (tests use httpx2.MockTransport)."""
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._http = http_client or httpx2.Client()
        self._owns_http = http_client is None
        self.providers = [Provider(c, self._pool(c, http_client)) for c in configs]

    def _pool(self, c: ProviderConfig, http_client: httpx2.Client | None) -> EndpointPool:
        endpoints = [
            Endpoint(
                base_url=base,
                health_url=health,
                client=openai.OpenAI(
                    base_url=base,
                    api_key=c.api_key,
                    timeout=c.timeout_s,
                    max_retries=0,  # the chain retries itself (on another endpoint if any)
                    http_client=http_client,
                ),
            )
            for base, health in c.endpoint_urls()
        ]
        return EndpointPool(
            endpoints,
            clock=self._clock,
            check_health=lambda ep: self._check_health(c.name, ep),
            cooldown_seconds=self.cooldown_seconds,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderChain:
        return cls(configs_from_settings(settings), cooldown_seconds=settings.provider_cooldown_seconds)

    @property
    def model_id(self) -> str | None:
        """`<provider>:<model>` of the first enabled provider (a cache-key part), None if none."""
        if not self.providers:
            return None
        first = self.providers[0].config
        return f"{first.name}:{first.model}"

    def is_available(self, provider: Provider) -> bool:
        """Some endpoint of the provider is out of cool-down and passes its health check."""
        return provider.pool.any_available()

    def _check_health(self, name: str, ep: Endpoint) -> bool:
        assert ep.health_url is not None
        try:
            resp = self._http.get(ep.health_url, timeout=HEALTH_TIMEOUT_SECONDS)
        except httpx2.HTTPError as exc:
            log.warning(
                "provider_unhealthy",
                extra={"provider": name, "endpoint": ep.label, "error": log_text(exc)},
            )
            return False
        # A server without a /health route (404) is up; 5xx means loading or broken.
        healthy = resp.status_code < 500
        if not healthy:
            fields = {"provider": name, "endpoint": ep.label, "status": resp.status_code}
            log.warning("provider_unhealthy", extra=fields)
        return healthy

    def complete_json(self, request: JsonRequest, validate: Callable[[Any], T]) -> tuple[T, ProviderCall]:
        """The first valid answer of the enabled providers, in order; ProviderError when none."""
        errors: list[str] = []
        for provider in self.providers:
            if not self.is_available(provider):
                errors.append(f"{provider.name}: skipped (cool-down or unhealthy)")
                continue
            try:
                return self.call(provider, request, validate)
            except ProviderError as exc:
                errors.append(str(exc))
        raise ProviderError("chain", "exhausted", "; ".join(errors) or "no LLM provider enabled")

    def call(
        self, provider: Provider, request: JsonRequest, validate: Callable[[Any], T]
    ) -> tuple[T, ProviderCall]:
        """One provider, retried once (with several endpoints: each tried once, least busy
        first); records each endpoint's outcome for its cool-down; raises ProviderError."""
        pool = provider.pool
        failed: list[tuple[Endpoint, bool]] = []  # (endpoint, connection error)
        last: ProviderError | None = None
        try:
            for attempt in range(1, max(2, len(pool.endpoints)) + 1):
                ep = pool.acquire(tried=[e for e, _ in failed])
                if ep is None:  # every endpoint went unhealthy or cooled down meanwhile
                    last = last or ProviderError(provider.name, "unavailable", "no endpoint available")
                    break
                try:
                    value, call = self._call_once(provider, ep, request, validate)
                except ProviderError as exc:
                    last = exc
                    failed.append((ep, exc.kind in ("connection", "timeout")))
                    continue
                finally:
                    pool.release(ep)
                pool.record_success(ep)
                failed = [(e, c) for e, c in failed if e is not ep]  # its last word was a success
                return value, ProviderCall(**{**call.__dict__, "attempts": attempt})
        finally:
            # One failed call per endpoint, however often it was tried in this call.
            seen: list[Endpoint] = []
            for ep, conn_error in failed:
                if not any(ep is s for s in seen):
                    seen.append(ep)
                    self._record_failure(provider, ep, conn_error)
        assert last is not None
        raise last

    def _record_failure(self, provider: Provider, ep: Endpoint, connection_error: bool) -> None:
        if provider.pool.record_failure(ep, connection_error):
            metrics.PROVIDER_COOLDOWNS.labels(provider.name).inc()
            log.warning(
                "provider_cooldown",
                extra={"provider": provider.name, "endpoint": ep.label, "seconds": self.cooldown_seconds},
            )

    def _call_once(
        self, provider: Provider, ep: Endpoint, request: JsonRequest, validate: Callable[[Any], T]
    ) -> tuple[T, ProviderCall]:
        cfg = provider.config
        started = time.perf_counter()
        outcome, error = "ok", None
        try:
            resp = ep.client.chat.completions.create(**request_kwargs(cfg, request))
            value, usage = _parse(cfg.name, resp, validate)
        except ProviderError as exc:
            outcome, error = exc.kind, str(exc)
            raise
        except openai.APITimeoutError as exc:
            outcome, error = "timeout", f"no answer within {cfg.timeout_s:g}s"
            raise ProviderError(cfg.name, "timeout", error) from exc
        except openai.APIConnectionError as exc:
            outcome, error = "connection", str(exc)[:ERROR_TEXT_CHARS]
            raise ProviderError(cfg.name, "connection", error) from exc
        except openai.APIStatusError as exc:
            outcome, error = "http_error", f"HTTP {exc.status_code}: {str(exc)[:ERROR_TEXT_CHARS]}"
            raise ProviderError(cfg.name, "http_error", error) from exc
        except openai.OpenAIError as exc:  # e.g. a response the SDK itself cannot read
            outcome, error = "api_error", f"{type(exc).__name__}: {str(exc)[:ERROR_TEXT_CHARS]}"
            raise ProviderError(cfg.name, "api_error", error) from exc
        finally:
            elapsed = time.perf_counter() - started
            metrics.PROVIDER_CALLS.labels(cfg.name, outcome).inc()
            metrics.PROVIDER_LATENCY.labels(cfg.name).observe(elapsed)
            log.info(
                "provider_call",
                extra={
                    "provider": cfg.name,
                    "model": cfg.model,
                    "endpoint": ep.label,
                    "outcome": outcome,
                    "latency_ms": round(elapsed * 1000, 1),
                    "error": error,
                },
            )
        prompt, completion = usage
        metrics.PROVIDER_TOKENS.labels(cfg.name, "prompt").inc(prompt)
        metrics.PROVIDER_TOKENS.labels(cfg.name, "completion").inc(completion)
        return value, ProviderCall(cfg.name, cfg.model, round(elapsed * 1000, 1), prompt, completion)

    def close(self) -> None:
        if not self._owns_http:
            return  # the caller's client: closing one provider would close it for all
        for provider in self.providers:
            for ep in provider.pool.endpoints:
                ep.client.close()
        self._http.close()


def request_kwargs(cfg: ProviderConfig, request: JsonRequest) -> dict[str, Any]:
    """The chat.completions.create arguments of one call (also used by loadtest/bench_llm.py)."""
    if cfg.response_format == "json_schema":
        fmt: dict[str, Any] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": request.schema, "strict": True},
        }
    else:  # llama.cpp servers: json_object with the schema beside it; the title names it
        fmt = {"type": "json_object", "schema": {**request.schema, "title": request.schema_name}}
    kwargs: dict[str, Any] = {
        "model": cfg.model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
        "temperature": 0,
        "max_tokens": min(request.max_tokens, cfg.max_output_tokens),
        "response_format": fmt,
    }
    if cfg.extra_body:
        kwargs["extra_body"] = cfg.extra_body
    return kwargs


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def _parse(name: str, resp: ChatCompletion, validate: Callable[[Any], T]) -> tuple[T, tuple[int, int]]:
    if not getattr(resp, "choices", None):
        raise ProviderError(name, "invalid", "answer has no choices")
    choice = resp.choices[0]
    content = (choice.message.content or "").strip()
    if choice.finish_reason == "length":
        raise ProviderError(name, "invalid", "answer cut off at max_tokens")
    content = _FENCE.sub("", _THINK.sub("", content)).strip()
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ProviderError(
            name, "invalid", f"answer is not JSON ({exc.msg}): {content[:ANSWER_QUOTE_CHARS]!r}"
        ) from None
    try:
        value = validate(data)
    except (ValueError, ValidationError, TypeError) as exc:
        raise ProviderError(name, "invalid", str(exc)[:ERROR_TEXT_CHARS]) from None
    usage = resp.usage
    tokens = (int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)) if usage else (0, 0)
    return value, tokens
