"""One settings object, read from the environment once, at an entrypoint.

Every name of DESIGN.md is here with its default. Secrets (database and Redis URLs, keys)
have no defaults: `Settings.load(needs=...)` stops start-up with one message that names every
missing or placeholder value the calling process needs.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

Need = Literal["database", "redis", "api"]
RolloutStage = Literal["shadow", "partial", "primary"]
ReviewMode = Literal["ingredient", "unit", "any"]
SourceFilter = Literal["scraper", "recipe", "any"]

# Values people paste from examples; they must never reach a running box.
_PLACEHOLDER = re.compile(
    r"^(change[-_ ]?me.*|.*changeme.*|placeholder.*|.*<[^>]*>.*|todo|tbd|x{3,}|your[-_ ].*|"
    r"replace[-_ ]?me.*|dummy|example|secret|password|none|null|\.\.\.|sk-\.\.\..*|fixme)$",
    re.IGNORECASE,
)

# What each rollout stage implies when DRY_RUN / QUEUE_SOURCE are not set explicitly.
STAGE_DEFAULTS: dict[str, dict[str, object]] = {
    "shadow": {"dry_run": True, "queue_source": "any"},
    "partial": {"dry_run": False, "queue_source": "scraper"},
    "primary": {"dry_run": False, "queue_source": "any"},
}


def is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value.strip()))


class Settings(BaseSettings):
    # An empty variable means "the default": compose hands .env over whole (env_file), and an
    # empty line there (`DRY_RUN=`, `QUEUE_MAX_CYCLES=`) must not be read as a value.
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=False, env_ignore_empty=True
    )

    # Connections (secrets: no defaults).
    database_url: str | None = None
    # A session connection (direct, or a session-mode pooler) for LISTEN, the dispatcher's lock
    # and `sous migrate`, when DATABASE_URL goes through a transaction-mode pooler (Supabase 6543).
    database_listen_url: str | None = None
    redis_url: str | None = None

    # Local model server (vLLM or the simulator).
    local_llm_enabled: bool = False
    local_llm_base_url: str | None = None
    local_llm_model: str = "qwen3-8b-instruct"
    # DESIGN.md says 20000; at the published ~163 ms per output token (16 streams) even a 3-item
    # chunk needs more, so every call would time out and fall to the next provider. See docs.
    local_llm_timeout_ms: int = Field(default=60000, gt=0)
    local_llm_max_output_tokens: int = Field(default=1000, gt=0)
    local_llm_response_format: Literal["json_schema", "json_object"] = "json_schema"
    local_llm_api_key: str | None = None

    # Cloud fallbacks: skipped when their key is empty.
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str | None = None
    gemini_api_key: str | None = None
    gemini_model: str = "gemini-2.0-flash"
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta/openai/"
    llm_providers: str = "local,openai,gemini,rules"
    provider_cooldown_seconds: float = Field(default=30.0, ge=0)

    # Queue.
    queue_batch_limit: int = Field(default=50, gt=0)
    queue_max_cycles: int | None = Field(default=None, gt=0)
    queue_batch_delay_seconds: float = Field(default=0.0, ge=0)
    queue_batch_window_ms: int = Field(default=300, ge=0)
    queue_chunk_concurrency: int = Field(default=2, gt=0)
    queue_lease_seconds: int = Field(default=180, gt=0)
    queue_source: SourceFilter = "scraper"
    queue_review_mode: ReviewMode = "ingredient"
    queue_token_budget: int = Field(default=2000, gt=0)
    # Output tokens (~40-48 per item) dominate a chunk's latency on bf16 Qwen3-8B: 4 items ~ 30 s.
    queue_chunk_max_items: int = Field(default=4, gt=0)
    queue_max_attempts: int = Field(default=3, gt=0)
    # Off only for the naive baseline of `make bench` (one request per row, no cache, no dedupe).
    queue_dedupe_enabled: bool = True
    ingredient_cache_enabled: bool = True
    # Lines whose name the rules know are not sent to the model (model/ingredients.py).
    ingredient_model_skip_confident: bool = False
    worker_interval_seconds: float = Field(default=300.0, gt=0)
    # LISTEN for new rows. Off behind PgBouncer in transaction mode (LISTEN does not pass
    # through it): the dispatcher then sweeps every min(WORKER_INTERVAL_SECONDS, 5) s instead.
    queue_listen: bool = True
    # RQ workers per box: one per vLLM sequence (--max-num-seqs 16); model/README.md says why.
    # images/app.Dockerfile and .env.example carry the same number (tests/unit/test_compose.py).
    worker_count: int = Field(default=16, gt=0)
    box_id: str = Field(default_factory=socket.gethostname)

    # Shadow report: which of the app's queue columns hold the nightly job's answer for each
    # field sous answers, as field=column pairs (fields: canonical_name, resolved_unit,
    # resolved_quantity, status).
    shadow_compare_columns: str = "canonical_name=canonical_name,resolved_unit=resolved_unit"

    # Rollout.
    rollout_stage: RolloutStage | None = None
    dry_run: bool = False

    # API and auth.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, gt=0, lt=65536)
    api_workers: int = Field(default=2, gt=0)
    supabase_jwt_secret: str | None = None
    supabase_jwks_url: str | None = None
    service_api_key: str | None = None
    menu_max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    menu_allow_private_hosts: bool = False
    # Comma-separated networks (CIDR) an imageUrl may reach although they are not public: an
    # office NAS, say. Narrower than MENU_ALLOW_PRIVATE_HOSTS; every other address stays refused.
    menu_fetch_allowed_networks: str = ""
    # Pixel cap when decoding a menu photo: larger images are refused as decompression bombs.
    menu_max_image_pixels: int = Field(default=40_000_000, gt=0)
    # OCR engine of menu photos: rapidocr (PP-OCRv4 ONNX, read 98.7 % of the real menus' item
    # names) or tesseract (faster, weaker on photos); BENCHMARKS.md has both.
    menu_ocr_engine: Literal["rapidocr", "tesseract"] = "rapidocr"
    # Seconds one menu's OCR may take before the engine is killed and the job fails.
    menu_ocr_timeout_seconds: float = Field(default=120.0, gt=0)
    # Seconds between SSE keep-alive comments on /api/extraction/events.
    api_sse_ping_seconds: float = Field(default=15.0, gt=0)
    # Per-user limits on costly resources (issue 13; docs/api.md lists every limit).
    # One deadline for an image fetch: DNS, connect, headers, every redirect and the body.
    menu_fetch_deadline_seconds: float = Field(default=30.0, gt=0)
    # Image fetches one user may have in flight at once (all API processes); 429 beyond.
    menu_fetch_per_user: int = Field(default=3, gt=0)
    # Image fetches one API process runs at once (all users); 503 FETCH_CAPACITY beyond.
    menu_fetch_per_process: int = Field(default=64, gt=0)
    # Open /api/extraction/events streams per user (all API processes); 429 beyond.
    api_sse_streams_per_user: int = Field(default=3, gt=0)
    # /api/ingredients/standardize items per user per clock hour (the service key is exempt).
    api_standardize_items_per_hour: int = Field(default=2000, gt=0)
    # Comma-separated networks (CIDR) whose clients may read /metrics without the service key
    # (Prometheus on the box). Everything else, and every other ops route, needs SERVICE_API_KEY.
    metrics_allowed_networks: str = "127.0.0.0/8,::1/128"
    # Seconds a dashboard sign-in (the HttpOnly session cookie) stays valid.
    dashboard_session_seconds: int = Field(default=43200, gt=0)

    # Observability (core/observability.py, core/alerts.py; docs/observability.md).
    # Seconds the shared snapshot of the costly numbers (totals, windows, wait histogram) lives.
    obs_snapshot_seconds: float = Field(default=15.0, gt=0)
    # Extra PROMETHEUS_MULTIPROC_DIR directories /metrics merges (another container's workers).
    obs_metrics_dirs: str = ""
    # Alert when more rows than this are pending.
    alert_queue_depth: int = Field(default=5000, gt=0)
    # Alert when the oldest pending row has waited longer than this (the SLO is p95 < 5 min).
    alert_oldest_pending_seconds: float = Field(default=300.0, gt=0)
    # Alert when more processing rows than this have an expired lease (dead workers).
    alert_expired_leases: int = Field(default=50, ge=0)
    # Alert when failed / (resolved + failed) over the last hour exceeds this (rejected excluded).
    alert_failure_rate: float = Field(default=0.02, ge=0, le=1)
    # ... but only once the hour has at least this many resolved + failed rows.
    alert_failure_min_rows: int = Field(default=20, gt=0)
    # Alert when fewer RQ workers than this are alive (heartbeat within their TTL).
    alert_min_live_workers: int = Field(default=1, ge=0)

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _apply_rollout_stage(self) -> Settings:
        if self.rollout_stage is not None:
            for field, value in STAGE_DEFAULTS[self.rollout_stage].items():
                if field not in self.model_fields_set:
                    setattr(self, field, value)
        return self

    @property
    def fetch_allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        parts = (p.strip() for p in self.menu_fetch_allowed_networks.split(","))
        return [ipaddress.ip_network(p, strict=False) for p in parts if p]

    @property
    def metrics_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        parts = (p.strip() for p in self.metrics_allowed_networks.split(","))
        return [ipaddress.ip_network(p, strict=False) for p in parts if p]

    @property
    def provider_order(self) -> list[str]:
        return [p.strip() for p in self.llm_providers.split(",") if p.strip()]

    @classmethod
    def load(cls, needs: tuple[Need, ...] = ("database",)) -> Settings:
        """Read the environment and check what the calling process needs, all at once."""
        try:
            settings = cls()
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
            ]
            raise ConfigError(problems) from None
        problems = settings.problems(needs)
        if problems:
            raise ConfigError(problems)
        return settings

    def problems(self, needs: tuple[Need, ...]) -> list[str]:
        out: list[str] = []
        if "database" in needs:
            out += _check_url("DATABASE_URL", self.database_url, ("postgresql", "postgres"))
            if self.database_listen_url:
                out += _check_url("DATABASE_LISTEN_URL", self.database_listen_url, ("postgresql", "postgres"))
        if "redis" in needs:
            out += _check_url("REDIS_URL", self.redis_url, ("redis", "rediss", "unix"))
        if "api" in needs:
            out += _check_secret("SERVICE_API_KEY", self.service_api_key, min_len=16)
            if not self.supabase_jwt_secret and not self.supabase_jwks_url:
                out.append("SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL: one is required")
            if self.supabase_jwt_secret:
                out += _check_secret("SUPABASE_JWT_SECRET", self.supabase_jwt_secret, min_len=32)
        # Optional keys: absent means "provider skipped"; a placeholder is a mistake.
        for name, value in (
            ("OPENAI_API_KEY", self.openai_api_key),
            ("GEMINI_API_KEY", self.gemini_api_key),
        ):
            if value and is_placeholder(value):
                out.append(f"{name}: placeholder value; set a real key or leave it empty")
        if self.local_llm_enabled and not (self.local_llm_base_url or "").replace(",", "").strip():
            out.append("LOCAL_LLM_BASE_URL: required when LOCAL_LLM_ENABLED=true")
        elif self.local_llm_enabled and self.local_llm_base_url:
            # Several model servers: comma-separated (model/endpoints.py spreads the load).
            for url in (u.strip() for u in self.local_llm_base_url.split(",") if u.strip()):
                out += _check_url("LOCAL_LLM_BASE_URL", url, ("http", "https"))
        try:
            self.fetch_allowed_networks  # noqa: B018 - parsed here so start-up names a bad one
        except ValueError as exc:
            out.append(f"MENU_FETCH_ALLOWED_NETWORKS: {exc}")
        try:
            self.metrics_networks  # noqa: B018 - parsed here so start-up names a bad one
        except ValueError as exc:
            out.append(f"METRICS_ALLOWED_NETWORKS: {exc}")
        unknown = set(self.provider_order) - {"local", "openai", "gemini", "rules"}
        if unknown:
            out.append(f"LLM_PROVIDERS: unknown provider(s) {sorted(unknown)}")
        return out


def _check_secret(name: str, value: str | None, min_len: int) -> list[str]:
    if not value:
        return [f"{name}: missing"]
    if is_placeholder(value):
        return [f"{name}: placeholder value"]
    if len(value) < min_len:
        return [f"{name}: too short (at least {min_len} characters)"]
    return []


def _check_url(name: str, value: str | None, schemes: tuple[str, ...]) -> list[str]:
    if not value:
        return [f"{name}: missing"]
    parts = urlsplit(value)
    scheme = parts.scheme.split("+")[0]
    if scheme not in schemes:
        return [f"{name}: scheme must be one of {', '.join(schemes)}"]
    if is_placeholder(value) or (parts.password and is_placeholder(parts.password)):
        return [f"{name}: placeholder value"]
    return []
