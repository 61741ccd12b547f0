"""JWT verification: HS256, JWKS (RS256), expiry, audience, alg none, algorithm confusion."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.auth import AuthError, TokenVerifier, mint_token, service_key_matches

SECRET = "unit-test-secret-0123456789abcdef0123456789"
USER = uuid.uuid4()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_hs256_token_is_accepted() -> None:
    principal = TokenVerifier(hs256_secret=SECRET).verify(mint_token(SECRET, USER))
    assert principal.user_id == USER
    assert principal.role == "authenticated"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: mint_token(SECRET, USER, now=time.time() - 7200), "expired"),
        (lambda: mint_token("another-secret-0123456789abcdef0123456", USER), "Signature"),
        (lambda: mint_token(SECRET, USER, extra={"aud": "anon"}), "(?i)audience"),
        (lambda: jwt.encode({"sub": str(USER), "aud": "authenticated"}, SECRET), "exp"),
        (lambda: mint_token(SECRET, "not-a-uuid"), "subject"),
        (lambda: "not.a.token", "malformed"),
    ],
)
def test_bad_tokens_are_refused(make, reason) -> None:
    with pytest.raises(AuthError, match=reason):
        TokenVerifier(hs256_secret=SECRET).verify(make())


def test_alg_none_is_refused() -> None:
    claims = {"sub": str(USER), "aud": "authenticated", "exp": int(time.time()) + 600}
    unsigned = (
        f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."
    )
    with pytest.raises(AuthError, match="not accepted"):
        TokenVerifier(hs256_secret=SECRET).verify(unsigned)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    body = json.dumps({"keys": [jwk | {"kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def _claims() -> dict[str, object]:
    return {"sub": str(USER), "aud": "authenticated", "exp": int(time.time()) + 600}


def test_rs256_token_from_jwks_is_accepted(rsa_key, jwks_url) -> None:
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    assert TokenVerifier(jwks_url=jwks_url).verify(token).user_id == USER


def test_algorithm_confusion_is_refused(rsa_key, jwks_url) -> None:
    """An HS256 token whose HMAC key is the public key: refused by a JWKS verifier, and by a
    verifier with both (the HMAC check uses the secret, never a public key)."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    sig = _b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    forged = f"{header}.{payload}.{sig}"
    with pytest.raises(AuthError, match="not accepted"):
        TokenVerifier(jwks_url=jwks_url).verify(forged)
    with pytest.raises(AuthError, match="Signature"):
        TokenVerifier(hs256_secret=SECRET, jwks_url=jwks_url).verify(forged)


def test_rs256_token_refused_without_jwks(rsa_key) -> None:
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthError, match="not accepted"):
        TokenVerifier(hs256_secret=SECRET).verify(token)


def test_service_key_comparison() -> None:
    assert service_key_matches("a" * 20, "a" * 20)
    assert not service_key_matches("a" * 20, "b" * 20)
    assert not service_key_matches(None, "b" * 20)
    assert not service_key_matches("", "")
