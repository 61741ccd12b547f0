"""The attack list of issue 13's outside review, replayed against the API as deployed: `sous api`
(gunicorn, 2 uvicorn workers) at LOG_LEVEL=INFO, real Postgres and Redis. Every attack is
refused with its code, and nothing is charged to the attacker's quota (read from the database).
The limits on costly resources are in test_api_limits.py; the servers and the stack in
tests/attack_support.py.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.auth import mint_token
from tests.api_support import auth, png, png_bomb, token
from tests.attack_support import (
    ImageHost,
    Stack,
    Stream,
    charged,
    send,
    set_limits,
    submit_url,
)

# ------------------------------------------------------------------------------ the main path


def test_an_upload_answers_200_with_a_job_id_at_info(stack: Stack, http: httpx.Client) -> None:
    user = uuid.uuid4()
    r = http.post(
        "/api/extraction/submit", files={"file": ("m.png", png(5001), "image/png")}, headers=auth(user)
    )
    assert r.status_code == 200, r.text
    job_id = r.json()["jobId"]
    assert charged(stack, user) == (1, 1)
    logged = [e for e in stack.events("menu_submitted") if e.get("job_id") == job_id]
    assert logged and logged[0]["new_job"] is True and logged[0]["level"] == "info"
    assert stack.events("request_crashed") == []


# ------------------------------------------------------------------------------ JWT forgeries


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_tokens(user: uuid.UUID) -> dict[str, str]:
    claims = {
        "sub": str(user),
        "aud": "authenticated",
        "role": "authenticated",
        "exp": int(time.time()) + 600,
    }

    def header_and_claims(alg: str) -> str:
        header = json.dumps({"alg": alg, "typ": "JWT"}).encode()
        return f"{_b64(header)}.{_b64(json.dumps(claims).encode())}"

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # RS/HS confusion: an HS256 token whose HMAC key is the RSA public key (PyJWT refuses to
    # sign like that, so it is built by hand, as an attacker would).
    confused = header_and_claims("HS256")
    confused_sig = hmac.new(public_pem, confused.encode(), hashlib.sha256).digest()
    return {
        "alg none": header_and_claims("none") + ".",
        "wrong key": mint_token("an-attackers-own-secret-0123456789abcdef", user),
        "expired": token(user, now=time.time() - 7200),
        "wrong audience": token(user, extra={"aud": "anon"}),
        "RS256 with the attacker's key": jwt.encode(claims, private, algorithm="RS256"),
        "HS256 keyed with an RSA public key": f"{confused}.{_b64(confused_sig)}",
        "subject not a user id": token(user, extra={"sub": "service_role"}),
        "tampered payload": token(user).rsplit(".", 1)[0][:-2] + "xx." + token(user).rsplit(".", 1)[1],
    }


def test_jwt_forgeries_are_401_and_cost_nothing(stack: Stack, http: httpx.Client) -> None:
    host = ImageHost(lambda req: send(req, png(1)))
    try:
        user = uuid.uuid4()
        for name, forged in forged_tokens(user).items():
            headers = {"Authorization": f"Bearer {forged}"}
            for r in (
                submit_url(http, user, host.url(), headers),
                http.post(
                    "/api/extraction/submit", files={"file": ("m.png", png(1), "image/png")}, headers=headers
                ),
                http.get("/api/extraction/quota", headers=headers),
                http.get("/api/extraction/events", headers=headers),
                http.post(
                    "/api/ingredients/standardize", json={"ingredients": ["1 cup flour"]}, headers=headers
                ),
            ):
                assert r.status_code == 401, (name, r.request.url.path, r.text)
                assert r.json()["code"] == "UNAUTHORIZED", name
        assert host.connections == 0
        assert charged(stack, user) == (0, 0)
    finally:
        host.close()


def test_credentials_are_checked_before_the_body_is_read(stack: Stack) -> None:
    """A request announcing 5 MB and sending none of it: without valid credentials the 401
    comes at once; with them the server waits for the body (it would read it)."""
    port = int(stack.url.rsplit(":", 1)[1])

    def first_bytes(headers: str) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                (
                    "POST /api/extraction/submit HTTP/1.1\r\nHost: sous\r\nContent-Type: image/png\r\n"
                    f"Content-Length: 5000000\r\n{headers}\r\n"
                ).encode()
            )
            s.settimeout(2)
            try:
                return s.recv(200)
            except TimeoutError:
                return b""

    assert first_bytes("").startswith(b"HTTP/1.1 401")
    assert first_bytes("Authorization: Bearer not.a.token\r\n").startswith(b"HTTP/1.1 401")
    assert first_bytes(f"Authorization: Bearer {token(uuid.uuid4())}\r\n") == b""  # reading the body


# ------------------------------------------------------------------------------ SSRF


def test_ssrf_forms_are_refused_without_a_connection(stack: Stack, http: httpx.Client) -> None:
    target = ImageHost(lambda req: send(req, png(2)), host="127.0.0.1")  # what the attacks aim at
    try:
        target_v6: ImageHost | None = ImageHost(lambda req: send(req, png(2)), host="::1")
    except OSError:  # no IPv6 loopback here: the ::1 forms are still refused, nothing listens
        target_v6 = None
    hops: list[str] = []

    def redirect(req: BaseHTTPRequestHandler) -> None:
        hops.append(req.path)
        req.send_response(302)
        req.send_header("Location", parse_qs(urlsplit(req.path).query)["to"][0])
        req.send_header("Content-Length", "0")
        req.end_headers()

    bouncer = ImageHost(redirect)  # on the allowed host: its first hop IS fetched
    p = target.server_address[1]
    p6 = target_v6.server_address[1] if target_v6 else p
    private = [
        f"http://127.0.0.1:{p}/menu.png",
        f"http://localhost:{p}/menu.png",
        f"http://[::1]:{p6}/menu.png",
        f"http://[::ffff:127.0.0.1]:{p}/menu.png",
        f"http://[::ffff:7f00:1]:{p}/menu.png",
        f"http://2130706433:{p}/menu.png",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{p}/menu.png",  # ... as one hex number
        f"http://127.1:{p}/menu.png",
        "http://10.0.0.1/menu.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/menu.png",
        "http://0.0.0.0/",
    ]
    malformed = [f"http://0177.0.0.1:{p}/menu.png", f"http://[::1%25lo]:{p}/menu.png"]  # octal, zone id
    schemes = ["file:///etc/passwd", f"gopher://127.0.0.1:{p}/_GET%20/", "ftp://127.0.0.1/a.png"]
    user = uuid.uuid4()
    set_limits(stack, user, {"ocr_jobs": 1000, "uploads_per_hour": 1000})
    try:
        for url in private:
            r = submit_url(http, user, url)
            assert (r.status_code, r.json()["code"]) == (400, "INVALID_INPUT"), (url, r.text)
            assert r.json()["error"] == "address not allowed", url  # nothing about what it resolved to
        for url in malformed:
            r = submit_url(http, user, url)
            assert (r.status_code, r.json()["code"]) == (400, "INVALID_INPUT"), (url, r.text)
        for url in private[:8]:  # every loopback form, reached by a redirect from a fetched host
            r = submit_url(http, user, bouncer.url(f"/r?to={url}"))
            assert (r.status_code, r.json()["error"]) == (400, "address not allowed"), (url, r.text)
        for url in schemes:
            r = submit_url(http, user, url)
            assert (r.status_code, r.json()["code"]) == (400, "INVALID_INPUT"), (url, r.text)
            assert "http or https" in r.json()["error"]
        r = submit_url(http, user, bouncer.url("/r?to=file:///etc/passwd"))
        assert r.status_code == 400 and "http or https" in r.json()["error"]
        assert len(hops) == 9  # the allowed first hops were fetched ...
        assert target.connections == 0  # ... and not one refused target was connected to
        assert target_v6 is None or target_v6.connections == 0
        assert charged(stack, user) == (0, 0)
        # The detail is for the operator: in the API's log, not in the answer.
        reasons = {str(e.get("reason")) for e in stack.events("fetch_refused")}
        assert any("is loopback" in r for r in reasons) and any("169.254.169.254" in r for r in reasons)
    finally:
        for server in (target, target_v6, bouncer):
            if server is not None:
                server.close()


# ------------------------------------------------------------------------------ size and bombs


def test_size_and_decompression_bombs_are_refused_and_cost_nothing(stack: Stack, http: httpx.Client) -> None:
    gzip_bomb = gzip.compress(b"\x89PNG\r\n\x1a\n" + b"\0" * (64 * 1024 * 1024), compresslevel=9)
    served = {
        "/declared-huge.png": lambda req: (
            req.send_response(200),
            req.send_header("Content-Length", str(2**31)),
            req.end_headers(),
        ),
        "/gzip-bomb.png": lambda req: send(req, gzip_bomb, Content_Encoding="gzip", Content_Type="image/png"),
        "/pixel-bomb.png": lambda req: send(req, png_bomb(), Content_Type="image/png"),
    }
    host = ImageHost(lambda req: served[req.path](req))
    user = uuid.uuid4()
    try:
        refused = [
            http.post(
                "/api/extraction/submit",
                files={"file": ("b.png", png_bomb(), "image/png")},
                headers=auth(user),
            ),
            http.post(
                "/api/extraction/submit",
                files={"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024), "image/png")},
                headers=auth(user),
            ),
            *(submit_url(http, user, host.url(path)) for path in served),
        ]
        for r in refused:
            assert (r.status_code, r.json()["code"]) == (413, "IMAGE_TOO_LARGE"), r.text
        assert len(gzip_bomb) < 200_000  # 64 MB once inflated: the cap counts inflated bytes
        assert charged(stack, user) == (0, 0)
    finally:
        host.close()


# ------------------------------------------------------------------------------ other users


def test_another_users_jobs_are_not_found(stack: Stack, http: httpx.Client) -> None:
    alice, mallory = uuid.uuid4(), uuid.uuid4()
    job_id = http.post(
        "/api/extraction/submit", files={"file": ("m.png", png(5002), "image/png")}, headers=auth(alice)
    ).json()["jobId"]
    with stack.engine.begin() as conn:  # failed: the state in which its owner may retry it
        conn.execute(
            sa.text("UPDATE menu_extraction_jobs SET status = 'failed' WHERE id = :id"), {"id": job_id}
        )
    for r in (
        http.get(f"/api/extraction/status/{job_id}", headers=auth(mallory)),
        http.post(f"/api/extraction/retry/{job_id}", headers=auth(mallory)),
    ):
        assert (r.status_code, r.json()["code"]) == (404, "JOB_NOT_FOUND"), r.text
    assert charged(stack, mallory) == (0, 0)
    assert charged(stack, alice) == (1, 1)  # mallory's retry made no job on alice's account either


def test_a_stream_carries_only_its_users_jobs(stack: Stack, http: httpx.Client) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alice_stream, bob_stream = Stream(stack, token(alice)), Stream(stack, token(bob))
    try:
        assert alice_stream.ready.is_set() and bob_stream.ready.is_set()
        job_id = http.post(
            "/api/extraction/submit", files={"file": ("m.png", png(5003), "image/png")}, headers=auth(alice)
        ).json()["jobId"]
        deadline = time.monotonic() + 10
        while not any(k == "job" for k, _ in alice_stream.events):
            assert time.monotonic() < deadline, alice_stream.events
            time.sleep(0.05)
        time.sleep(1)
        assert json.loads(next(d for k, d in alice_stream.events if k == "job"))["id"] == job_id
        assert [k for k, _ in bob_stream.events] == ["ready"]
    finally:
        alice_stream.close()
        bob_stream.close()
