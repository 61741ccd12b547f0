from __future__ import annotations

import pytest

from cli.main import main
from core.errors import ConfigError
from core.settings import Settings, is_placeholder

GOOD_DB = "postgresql://sous:s3cr3t-pw@127.0.0.1:5432/sous"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)


def test_defaults_match_design(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", GOOD_DB)
    s = Settings.load(needs=("database",))
    assert s.local_llm_timeout_ms == 60000  # DESIGN.md says 20000: see docs/decisions.md
    assert s.local_llm_max_output_tokens == 1000
    assert s.provider_order == ["local", "openai", "gemini", "rules"]
    assert s.queue_batch_limit == 50
    assert s.queue_chunk_concurrency == 2
    assert s.queue_lease_seconds == 180
    assert s.queue_source == "scraper"
    assert s.queue_review_mode == "ingredient"
    assert s.worker_interval_seconds == 300
    assert s.dry_run is False


def test_missing_database_url_names_it() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.load(needs=("database",))
    assert "DATABASE_URL: missing" in str(exc.value)


def test_every_problem_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "changeme")
    monkeypatch.setenv("OPENAI_API_KEY", "your-openai-key")
    with pytest.raises(ConfigError) as exc:
        Settings.load(needs=("database", "redis", "api"))
    message = str(exc.value)
    for expected in (
        "DATABASE_URL: missing",
        "REDIS_URL: missing",
        "SERVICE_API_KEY: missing",
        "SUPABASE_JWT_SECRET: placeholder",
        "OPENAI_API_KEY: placeholder",
    ):
        assert expected in message
    assert len(exc.value.problems) == 5


def test_placeholder_password_in_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://sous:changeme@db:5432/sous")
    with pytest.raises(ConfigError, match="DATABASE_URL: placeholder"):
        Settings.load(needs=("database",))


def test_wrong_scheme_and_bad_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u:p@h/db")
    monkeypatch.setenv("QUEUE_LEASE_SECONDS", "soon")
    with pytest.raises(ConfigError) as exc:
        Settings.load(needs=("database",))
    assert "QUEUE_LEASE_SECONDS" in str(exc.value)


def test_fetch_allowed_networks_are_parsed_and_a_bad_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://sous@db:5432/sous")
    monkeypatch.setenv("MENU_FETCH_ALLOWED_NETWORKS", "192.168.1.20, fd00::/64")
    assert [str(n) for n in Settings.load().fetch_allowed_networks] == ["192.168.1.20/32", "fd00::/64"]
    monkeypatch.setenv("MENU_FETCH_ALLOWED_NETWORKS", "192.168.1.0/24,nas.local")
    with pytest.raises(ConfigError, match=r"MENU_FETCH_ALLOWED_NETWORKS: 'nas\.local'"):
        Settings.load()


@pytest.mark.parametrize(
    ("stage", "dry_run", "source"),
    [("shadow", True, "any"), ("partial", False, "scraper"), ("primary", False, "any")],
)
def test_rollout_stage_sets_defaults(
    monkeypatch: pytest.MonkeyPatch, stage: str, dry_run: bool, source: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", GOOD_DB)
    monkeypatch.setenv("ROLLOUT_STAGE", stage)
    s = Settings.load()
    assert (s.dry_run, s.queue_source) == (dry_run, source)


def test_explicit_env_wins_over_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", GOOD_DB)
    monkeypatch.setenv("ROLLOUT_STAGE", "shadow")
    monkeypatch.setenv("DRY_RUN", "false")
    monkeypatch.setenv("QUEUE_SOURCE", "recipe")
    s = Settings.load()
    assert (s.dry_run, s.queue_source) == (False, "recipe")


@pytest.mark.parametrize(
    "value", ["changeme", "CHANGE_ME", "<your key>", "your-secret", "xxxx", "placeholder"]
)
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


def test_real_values_are_not_placeholders() -> None:
    assert not is_placeholder("k3J9x-real-looking-value-2f8a")


def test_cli_stops_with_named_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 78
    assert "DATABASE_URL: missing" in capsys.readouterr().err
