"""The ops surface behind the service key: /api/queue/stats, /api/dashboard/data and the
dashboard's actions refuse without it (401 UNAUTHORIZED) and accept the key or a signed-in
session cookie; /metrics takes the key or an allowed network; /readyz names the failed check
without driver text; the stage the fleet reports, and alerts that know it; /docs offline."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.opsauth import SESSION_COOKIE, new_session
from devtools.services import free_port
from tests.api_support import SERVICE_KEY, api_settings

KEY = {"X-Service-Key": SERVICE_KEY}
OPS_ROUTES = ("/api/queue/stats", "/api/dashboard/data")


@pytest.fixture
def client(database_url: str, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(database_url, redis_url))) as c:
        yield c


def test_ops_routes_refuse_without_the_key_and_accept_it(client: TestClient) -> None:
    for route in OPS_ROUTES:
        r = client.get(route)
        assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED", (route, r.text)
        wrong = client.get(route, headers={"X-Service-Key": "not-the-key-0123456789"})
        assert wrong.status_code == 401
        assert client.get(route, headers=KEY).status_code == 200
        assert client.get(route, headers={"Authorization": f"Bearer {SERVICE_KEY}"}).status_code == 200
    r = client.post("/api/ops/rows/retry", json={"ids": [1]})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    # TestClient's peer is "testclient", not an address in METRICS_ALLOWED_NETWORKS.
    r = client.get("/metrics")
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    assert client.get("/metrics", headers={"Authorization": f"Bearer {SERVICE_KEY}"}).status_code == 200
    assert client.get("/metrics", headers=KEY).status_code == 200


def test_metrics_answers_the_allowed_networks(database_url: str, redis_url: str) -> None:
    settings = api_settings(database_url, redis_url, metrics_allowed_networks="10.1.0.0/16,::1/128")
    app = create_app(settings)
    with TestClient(app, client=("10.1.2.3", 5000)) as inside:
        assert inside.get("/metrics").status_code == 200
        assert inside.get("/api/queue/stats").status_code == 401  # only /metrics opens by network
    with TestClient(app, client=("127.0.0.1", 5000)) as loopback:
        assert loopback.get("/metrics").status_code == 401  # not in this setting
    with TestClient(app, client=("::1", 5000)) as v6:
        assert v6.get("/metrics").status_code == 200


def test_dashboard_sign_in_sets_a_signed_expiring_httponly_cookie(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and 'action="/dashboard/login"' in page.text
    assert 'id="stage-banner"' not in page.text  # the dashboard itself only after sign-in
    bad = client.post("/dashboard/login", data={"key": "wrong-key-0123456789abc"}, follow_redirects=False)
    assert bad.status_code == 401 and "not the service key" in bad.text
    assert SESSION_COOKIE not in client.cookies
    r = client.post("/dashboard/login", data={"key": SERVICE_KEY}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    set_cookie = r.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Max-Age=43200" in set_cookie
    assert "Secure" not in set_cookie  # plain http here; https sets Secure
    value = client.cookies[SESSION_COOKIE]
    assert SERVICE_KEY not in value and len(value.split(".")) == 3
    assert 'id="stage-banner"' in client.get("/dashboard").text
    for route in OPS_ROUTES:
        assert client.get(route).status_code == 200, route  # the cookie, no header
    # A forged, altered or expired cookie is refused.
    for forged in (
        value[:-1] + ("0" if value[-1] != "0" else "1"),
        new_session("another-key-0123456789abcdef", 600),
        new_session(SERVICE_KEY, 60, now=0),
        "9999999999.x." + "0" * 64,
    ):
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, forged)
        assert client.get("/api/dashboard/data").status_code == 401, forged
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value)
    assert client.get("/api/dashboard/data").status_code == 200
    out = client.post("/dashboard/logout", follow_redirects=False)
    assert out.status_code == 303 and f"{SESSION_COOKIE}=" in out.headers["set-cookie"]


def test_secure_cookie_over_https(database_url: str, redis_url: str) -> None:
    app = create_app(api_settings(database_url, redis_url))
    with TestClient(app, base_url="https://box.example") as c:
        r = c.post("/dashboard/login", data={"key": SERVICE_KEY}, follow_redirects=False)
        assert "Secure" in r.headers["set-cookie"]


def test_readyz_names_the_failed_check_without_driver_text(database_url: str, fresh_db: str) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with TestClient(create_app(api_settings(database_url, dead_redis))) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["code"] == "NOT_READY"
        assert r.json()["checks"] == {"database": "ok", "redis": "down", "model": "ok"}
        assert "refused" not in r.text.lower() and "errno" not in r.text.lower()
    dead_pg = f"postgresql://sous:x@127.0.0.1:{free_port()}/sous"
    with TestClient(create_app(api_settings(dead_pg, dead_redis))) as c:
        body = c.get("/readyz").json()
        assert body["checks"]["database"] == "down"
        assert "connection" not in json.dumps(body).lower()
    with TestClient(create_app(api_settings(fresh_db, dead_redis))) as c:
        body = c.get("/readyz").json()
        assert body["checks"]["database"] == "not migrated: run `sous migrate`"
        assert "relation" not in json.dumps(body)


def test_root_and_offline_docs(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/dashboard"
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        text = client.get(page).text
        assert f"/static-offline-docs/{asset}" in text, page
        assert "cdn" not in text.lower() and "fonts.googleapis" not in text, page
        served = client.get(f"/static-offline-docs/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000
    assert client.get("/static-offline-docs/swagger-ui.css").status_code == 200


def _seed(engine: sa.Engine) -> dict[str, int]:
    with engine.begin() as conn:
        ids = {
            status: conn.execute(
                sa.text(
                    "INSERT INTO ingredient_match_queue (raw_name, cleaned_name, status, attempt_count, "
                    "last_error, processing_lease_expires_at) VALUES (:n, :n, :s, 3, 'boom', :lease) "
                    "RETURNING id"
                ),
                {
                    "n": f"row {status}",
                    "s": status,
                    "lease": "2020-01-01T00:00:00Z" if status == "processing" else None,
                },
            ).scalar_one()
            for status in ("failed", "processing", "pending", "resolved")
        }
    return ids


def test_operator_actions_change_rows_and_are_audited(client: TestClient, engine: sa.Engine) -> None:
    ids = _seed(engine)
    data = client.get("/api/dashboard/data", headers=KEY).json()
    assert [r["id"] for r in data["stuck"]] == [ids["processing"]]
    r = client.post("/api/ops/rows/retry", json={"ids": [ids["failed"], ids["resolved"]]}, headers=KEY)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == [ids["failed"]] and r.json()["skipped"] == [ids["resolved"]]
    r = client.post("/api/ops/rows/requeue", json={"ids": [ids["processing"]]}, headers=KEY)
    assert r.json()["changed"] == [ids["processing"]]
    r = client.post("/api/ops/rows/discard", json={"ids": [ids["pending"]], "reason": "junk"}, headers=KEY)
    assert r.json()["changed"] == [ids["pending"]]
    bad = client.post("/api/ops/rows/explode", json={"ids": [1]}, headers=KEY)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_INPUT"
    assert client.post("/api/ops/rows/retry", json={"ids": []}, headers=KEY).status_code == 400
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, status FROM ingredient_match_queue")).all())
        attempts = conn.execute(
            sa.text("SELECT attempt_count FROM ingredient_match_queue WHERE id = :i"), {"i": ids["failed"]}
        ).scalar_one()
        audit = conn.execute(
            sa.text("SELECT actor, action, row_ids, changed_ids FROM ops_audit_log ORDER BY id")
        ).all()
    assert rows[ids["failed"]] == "pending" and attempts == 0
    assert rows[ids["processing"]] == "pending" and rows[ids["pending"]] == "rejected"
    assert rows[ids["resolved"]] == "resolved"
    assert [a.action for a in audit] == ["retry", "requeue", "discard"]
    assert audit[0].actor == "service-key@testclient" and audit[0].changed_ids == [
        str(ids["failed"])
    ]  # text: any id type
    shown = client.get("/api/dashboard/data", headers=KEY).json()
    assert [a["action"] for a in shown["audit"]] == ["discard", "requeue", "retry"]
    assert [r["id"] for r in shown["failures"]["rejected"]] == [ids["pending"]]
    assert shown["failures"]["ingredients"] == []  # rejected is not failed


def _cycle(engine: sa.Engine, box: str, stage: str, dry_run: bool, source: str) -> None:
    details = {"stage": {"rollout_stage": stage, "dry_run": dry_run, "queue_source": source,
                         "review_mode": "ingredient", "providers": ["local", "rules"]}}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO queue_runs (started_at, finished_at, box_id, trigger, dry_run, details) "
                "VALUES (now(), now(), :box, 'sweep', :dry, CAST(:details AS jsonb))"
            ),
            {"box": box, "dry": dry_run, "details": json.dumps(details)},
        )


def _old_pending(engine: sa.Engine, source: str, needs_ingredient_review: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ingredient_match_queue (raw_name, cleaned_name, source, created_at, "
                "needs_ingredient_review, needs_unit_review) "
                "VALUES ('old', 'old', :s, now() - interval '2 hours', :ing, true)"
            ),
            {"s": source, "ing": needs_ingredient_review},
        )


def _alerts(client: TestClient) -> set[str]:
    return {a["name"] for a in client.get("/api/queue/stats", headers=KEY).json()["alerts"]}


def test_the_stage_comes_from_the_fleet_and_alerts_know_it(client: TestClient, engine: sa.Engine) -> None:
    stats = client.get("/api/queue/stats", headers=KEY).json()
    assert stats["stage"]["known"] is False
    _old_pending(engine, "recipe")
    assert "oldest_pending" in _alerts(client)  # no stage known: every row is in scope
    _cycle(engine, "box-1", "shadow", True, "any")
    st = client.get("/api/queue/stats", headers=KEY).json()["stage"]
    assert st["known"] and st["rollout_stage"] == "shadow" and st["dry_run"] is True
    assert st["providers"] == ["local", "rules"]
    assert "oldest_pending" not in _alerts(client)  # a dry run leaves rows pending on purpose
    ready = client.get("/readyz").json()
    assert ready["stage"]["rollout_stage"] == "shadow" and ready["stage"]["dry_run"] is True
    _cycle(engine, "box-1", "partial", False, "scraper")
    assert "oldest_pending" not in _alerts(client)  # recipe rows are not partial's to take
    _old_pending(engine, "scraper", needs_ingredient_review=False)
    assert "oldest_pending" not in _alerts(client)  # QUEUE_REVIEW_MODE=ingredient never claims it
    _old_pending(engine, "scraper")
    assert "oldest_pending" in _alerts(client)
    _cycle(engine, "box-2", "shadow", True, "any")  # a second box, still in shadow
    st = client.get("/api/queue/stats", headers=KEY).json()["stage"]
    assert st["mixed"] is True and {b["box_id"] for b in st["boxes"]} == {"box-1", "box-2"}
    assert "oldest_pending" in _alerts(client)  # box-1 is live: its rows count
