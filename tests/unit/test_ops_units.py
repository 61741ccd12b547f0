"""Pure parts of the ops surface: the dashboard session token and the stage's alert scope."""

from __future__ import annotations

from api.opsauth import new_session, session_valid
from core.stage import Stage

KEY = "unit-service-key-0123456789abcdef"


def test_session_token_is_signed_expiring_and_bound_to_the_key() -> None:
    token = new_session(KEY, 60, now=1_000)
    assert KEY not in token and token.count(".") == 2
    assert session_valid(token, KEY, now=1_059)
    assert not session_valid(token, KEY, now=1_060)  # expired
    assert not session_valid(token, "another-key-0123456789abcdef", now=1_000)  # key rotated
    expires, nonce, mac = token.split(".")
    assert not session_valid(f"{int(expires) + 3600}.{nonce}.{mac}", KEY, now=1_000)  # extended
    assert not session_valid(f"{expires}.{nonce}x.{mac}", KEY, now=1_000)
    for junk in ("", "abc", "..", f"{expires}..{mac}", None):
        assert not session_valid(junk, KEY, now=1_000)
    assert not session_valid(token, None, now=1_000)
    assert new_session(KEY, 60, now=1_000) != token  # a nonce per sign-in


def _box(dry_run: bool, source: str | None, review: str | None) -> dict[str, object]:
    return {"box_id": "b", "dry_run": dry_run, "queue_source": source, "review_mode": review}


def _stage(*boxes: dict[str, object]) -> Stage:
    return Stage(True, "x", False, "any", "any", [], list(boxes))


def test_alert_scope_follows_the_fleets_stage() -> None:
    assert Stage(False, None, None, None, None, []).processed_scopes() is None  # unknown: all rows
    assert _stage(_box(True, "any", "any")).processed_scopes() == set()  # dry run: none
    assert _stage(_box(False, "scraper", "ingredient")).processed_scopes() == {"scraper:ingredient"}
    assert _stage(_box(False, "any", None)).processed_scopes() == {"scraper:any", "recipe:any"}
    mixed = _stage(_box(True, "any", "any"), _box(False, "recipe", "unit"))
    assert mixed.processed_scopes() == {"recipe:unit"}
