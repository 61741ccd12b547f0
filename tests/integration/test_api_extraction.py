"""The HTTP API in-process (FastAPI TestClient) on real Postgres and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api_support import SERVICE_KEY, api_settings, auth, png

SERVICE = {"X-Service-Key": SERVICE_KEY}


@pytest.fixture
def client(database_url: str, redis_url: str) -> Iterator[TestClient]:
    # Two workers, so the estimate test sees a new round every two jobs.
    app = create_app(api_settings(database_url, redis_url, menu_max_image_bytes=300_000, worker_count=2))
    with TestClient(app) as c:
        yield c


def upload(client: TestClient, user: uuid.UUID, seed: int, **fields: str):
    return client.post(
        "/api/extraction/submit",
        files={"file": ("menu.png", png(seed), "image/png")},
        data=fields,
        headers=auth(user),
    )


def set_status(engine: sa.Engine, job_id: str, status: str, **cols: object) -> None:
    sets = ", ".join([f"status = '{status}'", *(f"{k} = :{k}" for k in cols)])
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE menu_extraction_jobs SET {sets} WHERE id = :id"), {"id": job_id, **cols}
        )


def test_upload_is_queued_and_enqueued(client: TestClient, redis_url: str) -> None:
    user = uuid.uuid4()
    r = upload(client, user, 1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["cached"] is False and body["status"] == "queued"
    assert body["estimatedTime"] > 0
    job = client.get(f"/api/extraction/status/{body['jobId']}", headers=auth(user)).json()["job"]
    assert job["status"] == "queued" and job["result"] is None and job["retryCount"] == 0
    rq = redis_lib.Redis.from_url(redis_url)
    assert rq.lrange("rq:queue:menus", 0, -1) == [f"menu-{body['jobId']}".encode()]


def test_another_users_job_is_not_found(client: TestClient) -> None:
    owner = uuid.uuid4()
    job_id = upload(client, owner, 2).json()["jobId"]
    r = client.get(f"/api/extraction/status/{job_id}", headers=auth(uuid.uuid4()))
    assert r.status_code == 404
    assert r.json()["code"] == "JOB_NOT_FOUND"
    r = client.post(f"/api/extraction/retry/{job_id}", headers=auth(uuid.uuid4()))
    assert r.status_code == 404
    assert client.get(f"/api/extraction/status/{uuid.uuid4()}", headers=auth(owner)).status_code == 404
    assert (
        client.get("/api/extraction/status/not-a-uuid", headers=auth(owner)).json()["code"] == "INVALID_INPUT"
    )


def test_idempotency_cached_and_force(client: TestClient, engine: sa.Engine) -> None:
    user = uuid.uuid4()
    first = upload(client, user, 3).json()
    again = upload(client, user, 3).json()
    assert again["jobId"] == first["jobId"] and again["cached"] is False  # live job as it is
    set_status(engine, first["jobId"], "completed")
    cached = upload(client, user, 3).json()
    assert cached == {**cached, "jobId": first["jobId"], "cached": True, "estimatedTime": 0.0}
    other_version = upload(client, user, 3, promptVersion="v2").json()
    assert other_version["jobId"] != first["jobId"]
    quota = client.get("/api/extraction/quota", headers=auth(user)).json()
    assert quota["monthly"]["used"] == 2  # cached results cost no quota
    assert quota["hourly"]["used"] == 4  # every accepted submission counts per hour
    forced = upload(client, user, 3, force="true").json()
    assert forced["jobId"] not in (first["jobId"], other_version["jobId"]) and forced["cached"] is False
    assert client.get("/api/extraction/quota", headers=auth(user)).json()["monthly"]["used"] == 3


def test_retry_makes_new_jobs_until_the_limit(client: TestClient, engine: sa.Engine) -> None:
    user = uuid.uuid4()
    job_id = upload(client, user, 4).json()["jobId"]
    r = client.post(f"/api/extraction/retry/{job_id}", headers=auth(user))
    assert r.status_code == 409 and r.json()["code"] == "JOB_NOT_RETRYABLE"
    chain = [job_id]
    for n in (1, 2, 3):
        set_status(engine, chain[-1], "failed", error_message="boom")
        r = client.post(f"/api/extraction/retry/{chain[-1]}", headers=auth(user))
        assert r.status_code == 200, r.text
        new = client.get(f"/api/extraction/status/{r.json()['jobId']}", headers=auth(user)).json()["job"]
        assert new["retryCount"] == n and new["retryOf"] == chain[-1]
        again = client.post(f"/api/extraction/retry/{chain[-1]}", headers=auth(user)).json()
        assert again["jobId"] == new["id"]  # a second retry of the same job is the same retry
        chain.append(new["id"])
    set_status(engine, chain[-1], "failed", error_message="boom")
    r = client.post(f"/api/extraction/retry/{chain[-1]}", headers=auth(user))
    assert r.status_code == 409 and r.json()["code"] == "MAX_RETRIES_EXCEEDED"
    assert client.get("/api/extraction/quota", headers=auth(user)).json()["monthly"]["used"] == 1


def test_quota_plan_limits_and_refusals(client: TestClient, engine: sa.Engine) -> None:
    user = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO profiles (user_id, plan, plan_limits) VALUES (:u, 'premium', :l)"),
            {"u": str(user), "l": '{"ocr_jobs": 2, "uploads_per_hour": 3}'},
        )
    quota = client.get("/api/extraction/quota", headers=auth(user)).json()
    assert quota["plan"] == "premium"
    assert quota["monthly"]["limit"] == 2 and quota["hourly"]["limit"] == 3
    assert [upload(client, user, 10 + i).status_code for i in range(2)] == [200, 200]
    r = upload(client, user, 20)
    assert r.status_code == 403
    assert r.json()["code"] == "QUOTA_EXCEEDED" and r.json()["limit"] == "monthly" and r.json()["resetAt"]
    assert upload(client, user, 10).status_code == 200  # the same image again: no new extraction
    r = upload(client, user, 10)
    assert r.status_code == 429
    body = r.json()
    assert body["code"] == "RATE_LIMIT_EXCEEDED" and body["limit"] == "hourly" and body["resetAt"]
    assert 3500 <= int(r.headers["Retry-After"]) <= 3601


def test_estimated_time_follows_depth_and_recent_jobs(client: TestClient, engine: sa.Engine) -> None:
    user = uuid.uuid4()
    first = upload(client, user, 30).json()["estimatedTime"]
    second = upload(client, user, 31).json()["estimatedTime"]
    third = upload(client, user, 32).json()["estimatedTime"]
    assert first < third and first <= second  # 2 workers: a round every two jobs
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO menu_extraction_jobs"
                " (user_id, image_hash, status, processing_time, completed_at)"
                " SELECT gen_random_uuid(), 'x', 'completed', 60000, now() FROM generate_series(1, 5)"
            )
        )
    slow = upload(client, user, 33).json()["estimatedTime"]
    assert slow >= 2 * 60  # recent jobs took a minute each, two rounds ahead


def test_bad_submissions(client: TestClient) -> None:
    user = uuid.uuid4()
    h = auth(user)
    cases = [
        ({"json": {"imageUrl": "file:///etc/passwd"}}, 400, "INVALID_INPUT"),
        ({"json": {"imageUrl": "http://127.0.0.1/menu.png"}}, 400, "INVALID_INPUT"),
        ({"json": {"imageUrl": "https://x.test/a.png", "force": "maybe"}}, 400, "INVALID_INPUT"),
        ({"json": {"imageUrl": "https://x.test/a.png", "schemaVersion": "../../etc"}}, 400, "INVALID_INPUT"),
        ({"json": {}}, 400, "INVALID_INPUT"),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "INVALID_INPUT"),
        ({"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"files": {"file": ("a.txt", b"hello", "text/plain")}}, 400, "INVALID_INPUT"),
        ({"files": {"other": ("a.png", png(1), "image/png")}}, 400, "INVALID_INPUT"),
        (
            {"files": {"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 400_000, "image/png")}},
            413,
            "IMAGE_TOO_LARGE",
        ),
    ]
    for kwargs, status, code in cases:
        headers = {**h, **kwargs.pop("headers", {})}  # type: ignore[arg-type]
        r = client.post("/api/extraction/submit", headers=headers, **kwargs)  # type: ignore[arg-type]
        assert (r.status_code, r.json()["code"]) == (status, code), (kwargs, r.text)
    assert client.get("/api/extraction/quota", headers=h).json()["hourly"]["used"] == 0


def test_auth_is_required(client: TestClient) -> None:
    for method, path in [
        ("POST", "/api/extraction/submit"),
        ("GET", f"/api/extraction/status/{uuid.uuid4()}"),
        ("GET", "/api/extraction/quota"),
        ("GET", "/api/extraction/events"),
        ("POST", "/api/ingredients/queue"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED", path
        assert r.headers["WWW-Authenticate"] == "Bearer"
    # A user token is not the service key.
    r = client.post(
        "/api/ingredients/queue", json={"rows": [{"raw_name": "salt"}]}, headers=auth(uuid.uuid4())
    )
    assert r.status_code == 401
    r = client.post(
        "/api/ingredients/queue", json={"rows": [{"raw_name": "salt"}]}, headers={"X-Service-Key": "x" * 32}
    )
    assert r.status_code == 401


def test_redis_down_loses_nothing(database_url: str, redis_url: str, engine: sa.Engine) -> None:
    """Postgres is the truth: with Redis unreachable the job is still accepted and queued, and
    the dispatcher's sweep hands it to RQ once Redis is back."""
    from devtools.services import free_port  # noqa: PLC0415
    from worker import menu_task  # noqa: PLC0415 - the sweep under test runs in the dispatcher
    from worker.context import get_context, reset_context  # noqa: PLC0415

    dead = f"redis://127.0.0.1:{free_port()}/0"
    with TestClient(create_app(api_settings(database_url, dead))) as client:
        assert client.get("/readyz").status_code == 503
        r = upload(client, uuid.uuid4(), 40)
        assert r.status_code == 200, r.text
        assert (
            client.get("/api/queue/stats", headers={"X-Service-Key": SERVICE_KEY}).json()["rq"]["menus"] == -1
        )
    job_id = r.json()["jobId"]
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE menu_extraction_jobs SET created_at = now() - interval '1 min' WHERE id = :i"),
            {"i": job_id},
        )
    reset_context()
    try:
        assert menu_task.reenqueue_lost_menu_jobs(get_context(api_settings(database_url, redis_url))) == 1
    finally:
        reset_context()
    assert redis_lib.Redis.from_url(redis_url).lrange("rq:queue:menus", 0, -1) == [f"menu-{job_id}".encode()]
