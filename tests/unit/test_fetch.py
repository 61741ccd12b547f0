"""SSRF-safe fetch: refused targets make no connection at all (local listeners count them)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.fetch import (
    FetchFailed,
    ImageData,
    ImageTooLarge,
    SafeFetcher,
    UnsafeUrl,
    blocked_reason,
    policy_allowing,
    sniff_image_type,
)
from tests.api_support import png

IMAGE = png(7)


class RecordingServer(ThreadingHTTPServer):
    """An HTTP server that counts every TCP connection it accepts."""

    daemon_threads = True

    def __init__(self, host: str, handler: Callable[[BaseHTTPRequestHandler], None], family: int) -> None:
        self.address_family = family
        self.connections = 0
        self.hosts: list[str] = []
        serve = handler

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.server.hosts.append(self.headers.get("Host", ""))  # type: ignore[attr-defined]
                serve(self)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__((host, 0), Handler)

    def get_request(self) -> tuple[socket.socket, object]:
        self.connections += 1
        return super().get_request()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout, size cap) breaks the pipe: expected here

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def serve() -> Iterator[Callable[..., RecordingServer]]:
    servers: list[RecordingServer] = []

    def start(handler: Callable[[BaseHTTPRequestHandler], None], host: str = "127.0.0.1") -> RecordingServer:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = RecordingServer(host, handler, family)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def send_image(req: BaseHTTPRequestHandler, body: bytes = IMAGE) -> None:
    req.send_response(200)
    req.send_header("Content-Type", "image/png")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


def redirect_to(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(302)
        req.send_header("Location", location)
        req.send_header("Content-Length", "0")
        req.end_headers()

    return handler


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def only_public_and(*allowed: str) -> Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], str | None]:
    """The real policy, except that these exact addresses count as public (test servers)."""
    return lambda ip: None if str(ip) in allowed else blocked_reason(ip)


class SpyFetcher(SafeFetcher):
    """Counts the HTTP requests actually sent."""

    sent = 0

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_bytes=1_000_000, **kwargs)  # type: ignore[arg-type]

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super()._send(client, request)


def fetch(fetcher: SafeFetcher, url: str) -> ImageData:
    return asyncio.run(fetcher.fetch(url))


def test_private_targets_are_refused_without_connecting(serve) -> None:
    v4 = serve(send_image)
    targets = [
        f"http://127.0.0.1:{v4.port}/menu.png",
        f"http://localhost:{v4.port}/menu.png",
        f"http://[::ffff:127.0.0.1]:{v4.port}/menu.png",
        f"http://2130706433:{v4.port}/menu.png",  # 127.0.0.1 as one decimal number
        "http://10.0.0.1/menu.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
    ]
    if _has_ipv6_loopback():
        v6 = serve(send_image, host="::1")
        targets.append(f"http://[::1]:{v6.port}/menu.png")
    else:
        targets.append("http://[::1]/menu.png")
    fetcher = SpyFetcher()
    for url in targets:
        with pytest.raises((UnsafeUrl, FetchFailed)) as info:
            fetch(fetcher, url)
        assert info.value.code == "INVALID_INPUT", url
    assert fetcher.sent == 0
    assert v4.connections == 0
    if _has_ipv6_loopback():
        assert v6.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_x",
        "ftp://example.com/a.png",
        "//example.com/a",
        "nonsense",
    ],
)
def test_other_schemes_are_refused(url: str) -> None:
    fetcher = SpyFetcher()
    with pytest.raises(UnsafeUrl):
        fetch(fetcher, url)
    assert fetcher.sent == 0


def test_every_resolved_address_is_checked(caplog: pytest.LogCaptureFixture) -> None:
    """A name that resolves to a public AND a private address is refused (DNS rebinding). The
    caller hears only "address not allowed"; what the name resolved to is in the log."""
    fetcher = SpyFetcher(resolver=lambda host, port: ["93.184.216.34", "127.0.0.1"])
    with caplog.at_level(logging.WARNING, logger="core.fetch"), pytest.raises(UnsafeUrl) as info:
        fetch(fetcher, "http://menu.test/a.png")
    assert str(info.value) == "address not allowed"
    assert fetcher.sent == 0
    refused = [r for r in caplog.records if r.getMessage() == "fetch_refused"]
    assert [(r.host, r.reason) for r in refused] == [("menu.test", "127.0.0.1 is loopback")]


def test_redirect_to_a_private_address_is_refused(serve) -> None:
    inner = serve(send_image, host="127.0.0.2")
    outer = serve(redirect_to(f"http://127.0.0.2:{inner.port}/secret"))
    fetcher = SpyFetcher(resolver=lambda host, port: ["127.0.0.1"], policy=only_public_and("127.0.0.1"))
    with pytest.raises(UnsafeUrl, match=r"^address not allowed$"):
        fetch(fetcher, f"http://menu.test:{outer.port}/a.png")
    assert outer.connections == 1
    assert inner.connections == 0


def test_redirects_are_followed_and_connect_to_the_checked_address(serve) -> None:
    final = serve(send_image)
    hop = serve(redirect_to(f"http://cdn.test:{final.port}/b.png"))
    fetcher = SpyFetcher(resolver=lambda host, port: ["127.0.0.1"], policy=only_public_and("127.0.0.1"))
    image = fetch(fetcher, f"http://menu.test:{hop.port}/a.png")
    assert image.content == IMAGE
    assert image.content_type == "image/png"
    assert image.source_url == f"http://cdn.test:{final.port}/b.png"
    assert final.hosts == [f"cdn.test:{final.port}"]  # the name travels in Host, not the address


def test_more_than_three_redirects_fail(serve) -> None:
    loop = serve(redirect_to("/again"))
    fetcher = SpyFetcher(policy=only_public_and("127.0.0.1"))
    with pytest.raises(FetchFailed, match="more than 3 redirects"):
        fetch(fetcher, f"http://127.0.0.1:{loop.port}/start")
    assert loop.connections >= 1


def test_size_cap_is_enforced_while_streaming(serve) -> None:
    def chunked(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        block = IMAGE + b"\0" * 65536
        for _ in range(40):  # 2.6 MB, no Content-Length
            req.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
        req.wfile.write(b"0\r\n\r\n")

    def declared(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(50_000_000))
        req.end_headers()

    fetcher = SafeFetcher(max_bytes=1_000_000, policy=only_public_and("127.0.0.1"))
    for handler in (chunked, declared):
        server = serve(handler)
        with pytest.raises(ImageTooLarge):
            fetch(fetcher, f"http://127.0.0.1:{server.port}/big.png")


def test_type_is_sniffed_from_the_bytes(serve) -> None:
    def html(req: BaseHTTPRequestHandler) -> None:
        send_image(req, b"<html>not an image</html>")

    server = serve(html)
    fetcher = SafeFetcher(max_bytes=1_000_000, policy=only_public_and("127.0.0.1"))
    with pytest.raises(FetchFailed, match="did not return an image"):
        fetch(fetcher, f"http://127.0.0.1:{server.port}/a.png")
    assert sniff_image_type(IMAGE) == "image/png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"


def test_read_timeout(serve) -> None:
    def slow(req: BaseHTTPRequestHandler) -> None:
        time.sleep(2)

    server = serve(slow)
    fetcher = SafeFetcher(max_bytes=1000, read_timeout=0.3, policy=only_public_and("127.0.0.1"))
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="timed out"):
        fetch(fetcher, f"http://127.0.0.1:{server.port}/a.png")
    assert time.monotonic() - started < 1.5


def test_private_hosts_allowed_only_by_the_setting(serve) -> None:
    server = serve(send_image)
    assert fetch(
        SafeFetcher(max_bytes=1_000_000, allow_private=True), f"http://127.0.0.1:{server.port}/"
    ).content
    with pytest.raises(UnsafeUrl):
        fetch(SafeFetcher(max_bytes=1_000_000), f"http://127.0.0.1:{server.port}/")


def test_allowed_networks_open_only_those_addresses() -> None:
    policy = policy_allowing([ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("fd00::/64")])
    assert policy(ipaddress.ip_address("192.168.1.20")) is None
    assert policy(ipaddress.ip_address("fd00::5")) is None
    for still_blocked in ("192.168.2.1", "127.0.0.1", "169.254.169.254", "::ffff:192.168.1.20", "fd01::1"):
        assert policy(ipaddress.ip_address(still_blocked)) is not None, still_blocked
    assert policy_allowing([]) is blocked_reason


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:10.0.0.1",
     "2002:a00:1::", "64:ff9b::7f00:1"],
)  # fmt: skip
def test_blocked_addresses(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_https_connects_to_the_checked_address_and_verifies_the_name(tmp_path) -> None:
    """The connection goes to the resolved address, while TLS SNI and the certificate check
    use the host name: a certificate for menu.test passes, one for another name fails."""

    def certificate(name: str) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    for name, should_pass in (("menu.test", True), ("elsewhere.test", False)):
        cert_pem, key_pem = certificate(name)
        (tmp_path / "cert.pem").write_bytes(cert_pem)
        (tmp_path / "key.pem").write_bytes(key_pem)
        server = RecordingServer("127.0.0.1", send_image, socket.AF_INET)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client_ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        fetcher = SafeFetcher(
            max_bytes=1_000_000,
            resolver=lambda host, port: ["127.0.0.1"],
            policy=only_public_and("127.0.0.1"),
            verify=client_ctx,
        )
        try:
            if should_pass:
                assert fetch(fetcher, f"https://menu.test:{server.port}/a.png").content == IMAGE
                assert server.hosts == [f"menu.test:{server.port}"]
            else:
                with pytest.raises(FetchFailed):
                    fetch(fetcher, f"https://menu.test:{server.port}/a.png")
        finally:
            fetcher.close()
            server.shutdown()
            server.server_close()


def test_one_deadline_covers_headers_that_never_come() -> None:
    """A host that accepts the connection and never answers: the read timeout (10 s) would
    never fire on a server that trickles, so the overall deadline ends it."""
    with socket.create_server(("127.0.0.1", 0)) as mute:
        fetcher = SafeFetcher(max_bytes=1000, deadline_seconds=0.5, policy=only_public_and("127.0.0.1"))
        started = time.monotonic()
        with pytest.raises(FetchFailed, match=r"longer than 0\.5s"):
            fetch(fetcher, f"http://127.0.0.1:{mute.getsockname()[1]}/a.png")
        assert time.monotonic() - started < 1.5


def test_one_deadline_covers_every_redirect(serve) -> None:
    """Three hops that each answer well within the read timeout but together outlast the
    deadline: the fetch fails at the deadline, not after 3 x the per-hop budget."""

    def slow_redirect(req: BaseHTTPRequestHandler) -> None:
        time.sleep(0.4)
        redirect_to("/next")(req)

    server = serve(slow_redirect)
    fetcher = SafeFetcher(
        max_bytes=1000, read_timeout=5, deadline_seconds=1.0, policy=only_public_and("127.0.0.1")
    )
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="longer than 1s"):
        fetch(fetcher, f"http://127.0.0.1:{server.port}/a.png")
    assert 0.9 < time.monotonic() - started < 2.0
    assert server.connections >= 2


def test_a_slow_resolver_is_inside_the_deadline() -> None:
    def hanging_dns(host: str, port: int) -> list[str]:
        time.sleep(2)
        return ["93.184.216.34"]

    fetcher = SafeFetcher(max_bytes=1000, deadline_seconds=0.3, resolver=hanging_dns)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"longer than 0\.3s"):
        fetch(fetcher, "http://menu.test/a.png")
    assert time.monotonic() - started < 1.0
    fetcher.close()


def test_a_hanging_fetch_holds_no_thread_and_blocks_no_one() -> None:
    """20 fetches from a mute host run at once on one event loop; meanwhile the loop keeps
    answering (a 10 ms tick is never late by more than a fraction of a second)."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as mute:
        url = f"http://127.0.0.1:{mute.getsockname()[1]}/a.png"
        fetcher = SafeFetcher(max_bytes=1000, deadline_seconds=1.0, policy=only_public_and("127.0.0.1"))

        async def run() -> tuple[list[BaseException | ImageData], float, int]:
            threads_before = threading.active_count()
            fetches = asyncio.gather(*(fetcher.fetch(url) for _ in range(20)), return_exceptions=True)
            worst = 0.0
            for _ in range(50):
                t0 = time.monotonic()
                await asyncio.sleep(0.01)
                worst = max(worst, time.monotonic() - t0 - 0.01)
            extra_threads = threading.active_count() - threads_before
            return await fetches, worst, extra_threads

        results, worst_lag, extra_threads = asyncio.run(run())
        fetcher.close()
    assert all(isinstance(r, FetchFailed) for r in results)
    assert worst_lag < 0.2
    assert extra_threads <= 8  # at most the resolver pool, never one thread per fetch
