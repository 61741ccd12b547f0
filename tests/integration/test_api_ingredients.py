"""Ingredient and ops routes in-process on real Postgres and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api_support import SERVICE_KEY, api_settings, auth

OPS = {"X-Service-Key": SERVICE_KEY}

SERVICE = {"X-Service-Key": SERVICE_KEY}


@pytest.fixture
def client(database_url: str, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(database_url, redis_url))) as c:
        yield c


def test_standardize_in_input_order_for_user_and_service(client: TestClient) -> None:
    lines = ["2 cups all-purpose flour", "1 tsp salt", "", "3 large eggs"]
    for headers in (SERVICE, {"Authorization": f"Bearer {SERVICE_KEY}"}, auth(uuid.uuid4())):
        r = client.post("/api/ingredients/standardize", json={"ingredients": lines}, headers=headers)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["input"] for x in results] == lines
        assert results[0]["status"] == "resolved" and results[0]["unit"] == "cup"
        assert results[2]["status"] == "rejected"


def test_standardize_limits(client: TestClient) -> None:
    too_many = client.post(
        "/api/ingredients/standardize", json={"ingredients": ["salt"] * 501}, headers=SERVICE
    )
    assert too_many.status_code == 400 and too_many.json()["code"] == "INVALID_INPUT"
    not_strings = client.post(
        "/api/ingredients/standardize", json={"ingredients": [1, None]}, headers=SERVICE
    )
    assert not_strings.status_code == 400
    huge = client.post(
        "/api/ingredients/standardize",
        content=b'{"ingredients": ["' + b"a" * 2_000_000 + b'"]}',
        headers=SERVICE,
    )
    assert huge.status_code == 413 and huge.json()["code"] == "REQUEST_TOO_LARGE"


def test_queue_ingest_and_lookup(client: TestClient) -> None:
    rows = [
        {"raw_name": "Fresh Basil", "source": "recipe", "recipe_ingredient_id": 42},
        {"raw_name": "2 lb chicken thighs", "cleaned_name": "chicken thighs", "raw_unit": "lb"},
    ]
    r = client.post("/api/ingredients/queue", json={"rows": rows}, headers=SERVICE)
    assert r.status_code == 200, r.text
    ids = r.json()["ids"]
    assert len(ids) == 2 and ids[0] < ids[1]
    row = client.get(f"/api/ingredients/queue/{ids[1]}", headers=SERVICE).json()
    assert (
        row["status"] == "pending" and row["cleaned_name"] == "chicken thighs" and row["source"] == "scraper"
    )
    assert client.get(f"/api/ingredients/queue/{ids[0]}", headers=SERVICE).json()["source"] == "recipe"
    missing = client.get("/api/ingredients/queue/999999", headers=SERVICE)
    assert missing.status_code == 404 and missing.json()["code"] == "ROW_NOT_FOUND"
    stats = client.get("/api/queue/stats", headers=OPS).json()
    assert stats["ingredients"] == {"pending": 2}


def test_queue_rows_are_validated_each(client: TestClient) -> None:
    bad = [
        {"raw_name": "ok"},
        {"cleaned_name": "no raw name"},
        {"raw_name": 5},
        {"raw_name": "x", "source": "elsewhere"},
        {"raw_name": "x", "colour": "red"},
    ]
    r = client.post("/api/ingredients/queue", json={"rows": bad}, headers=SERVICE)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "INVALID_INPUT"
    bad_rows = {d["loc"][2] for d in body["details"]}
    assert bad_rows == {"1", "2", "3", "4"}
    assert client.get("/api/queue/stats", headers=OPS).json()["ingredients"] == {}  # nothing was inserted
    assert client.post("/api/ingredients/queue", json={"rows": []}, headers=SERVICE).status_code == 400
    many = {"rows": [{"raw_name": "salt"}] * 5001}
    assert client.post("/api/ingredients/queue", json=many, headers=SERVICE).status_code == 400


def test_a_body_the_parser_cannot_read_is_invalid_input(client: TestClient) -> None:
    nested = b'{"rows":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    headers = {**SERVICE, "Content-Type": "application/json"}
    r = client.post("/api/ingredients/queue", content=nested, headers=headers)
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_INPUT"
    assert client.get("/api/queue/stats", headers=OPS).json()["ingredients"] == {}


def test_ops_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["checks"] == {"database": "ok", "redis": "ok", "model": "ok"}
    client.get("/healthz")
    metrics = client.get("/metrics", headers=OPS)
    assert metrics.status_code == 200
    assert 'sous_api_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    assert "<html" in client.get("/dashboard", headers=OPS).text.lower().replace("<!doctype html>", "")
    spec = client.get("/openapi.json").json()
    assert "/api/extraction/submit" in spec["paths"]
    assert all("422" not in op["responses"] for p in spec["paths"].values() for op in p.values())
    unknown = client.get("/nope")
    assert unknown.status_code == 404 and unknown.json()["code"] == "NOT_FOUND"


def test_text_postgres_cannot_store_is_refused(client: TestClient) -> None:
    headers = {**SERVICE, "Content-Type": "application/json"}
    for value in ("salt\\u0000", "pepper\\ud800"):  # JSON escapes: NUL, a lone surrogate
        body = '{"rows": [{"raw_name": "' + value + '"}]}'
        r = client.post("/api/ingredients/queue", content=body.encode(), headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "INVALID_INPUT", r.text
        body = '{"ingredients": ["' + value + '"]}'
        r = client.post("/api/ingredients/standardize", content=body.encode(), headers=headers)
        assert r.status_code == 400
