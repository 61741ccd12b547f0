"""SSRF-safe image fetch for menu submissions by URL.

Every hop: the scheme is http or https; the host name is resolved and EVERY address checked
(loopback, private, link-local, multicast, reserved, unspecified, shared and the IPv6 forms,
IPv4-mapped and 6to4/Teredo-embedded addresses included); the connection is then made to the
checked address itself (Host header and TLS SNI keep the name), so a second DNS answer cannot
point elsewhere. Redirects are followed by hand, at most 3, each re-checked. Connect and read
timeouts, one overall deadline over every step, a streamed size cap, and the type sniffed from
the bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from PIL import Image

from core.errors import InvalidInput, SousError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
ADDRESS_NOT_ALLOWED = "address not allowed"
ALLOWED_SCHEMES = ("http", "https")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
AddressPolicy = Callable[[IpAddress], str | None]

# Magic numbers of the image types a menu photo may come in.
_SIGNATURES: list[tuple[bytes, str]] = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]


# The Pillow formats of the sniffed types: nothing else is even parsed.
PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")


class UnsafeUrl(InvalidInput):
    """The URL may not be fetched (scheme, or an address that is not public)."""


class FetchFailed(InvalidInput):
    """The image could not be fetched: timeout, HTTP error, too many redirects, not an image."""


class ImageTooLarge(SousError):
    code = "IMAGE_TOO_LARGE"


@dataclass(frozen=True)
class ImageData:
    """An image's bytes and sniffed type, and where it came from: the URL fetched (after its
    redirects), the URL a user submitted, or None for an upload."""

    content: bytes
    content_type: str
    source_url: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def sniff_image_type(data: bytes) -> str | None:
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_pixels(content: bytes, max_pixels: int) -> None:
    """Refuses a decompression bomb before it is stored or queued: the dimensions come from the
    image header alone (nothing is decoded). ImageTooLarge over `max_pixels`; InvalidInput
    when the header cannot be read. The worker's decoder checks again (model/ocr.py)."""
    try:
        with Image.open(io.BytesIO(content), formats=PILLOW_FORMATS) as img:
            width, height = img.size
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image is over the limit of {max_pixels:,} pixels") from None
    except (OSError, ValueError, SyntaxError):  # Pillow's "cannot identify", bad headers
        raise InvalidInput("the image cannot be read: its header is damaged or not an image") from None
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} pixels ({width * height:,}); the limit is {max_pixels:,}"
        )


def blocked_reason(ip: IpAddress) -> str | None:
    """Why an address may not be fetched from, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (embedded in {ip})" if reason else None
    for attr in (
        "is_loopback",
        "is_private",
        "is_link_local",
        "is_multicast",
        "is_reserved",
        "is_unspecified",
    ):
        if getattr(ip, attr):
            return f"{ip} is {attr[3:].replace('_', '-')}"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def policy_allowing(
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> AddressPolicy:
    """blocked_reason, except that addresses inside `networks` may be fetched from."""
    if not networks:
        return blocked_reason

    def policy(ip: IpAddress) -> str | None:
        if any(ip.version == net.version and ip in net for net in networks):
            return None
        return blocked_reason(ip)

    return policy


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"cannot resolve {host!r}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class SafeFetcher:
    """Fetches on the event loop (httpx.AsyncClient): a hanging image host holds no thread, so
    other requests never wait behind it. Name resolution, the only blocking step, runs in a
    small thread pool of the fetcher's own, not in the server's shared one. ONE deadline covers
    resolution, connect, headers, every redirect and the body."""

    def __init__(
        self,
        *,
        max_bytes: int,
        allow_private: bool = False,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        deadline_seconds: float = 30.0,
        resolver: Resolver = system_resolver,
        policy: AddressPolicy = blocked_reason,
        verify: ssl.SSLContext | bool = True,
        resolver_threads: int = 8,
    ) -> None:
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.deadline_seconds = deadline_seconds
        self.resolver = resolver
        self.policy = policy
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        )
        # Built once: loading the CA bundle per fetch would cost more than the fetch setup.
        self._verify: ssl.SSLContext | bool = (
            httpx.create_ssl_context(trust_env=False) if verify is True else verify
        )
        self._resolver_pool = ThreadPoolExecutor(resolver_threads, thread_name_prefix="sous-resolve")

    def close(self) -> None:
        # A resolution stuck in getaddrinfo cannot be interrupted; its thread ends on its own.
        self._resolver_pool.shutdown(wait=False, cancel_futures=True)

    def check_url(self, url: str) -> tuple[httpx.URL, str]:
        """The parsed URL and the checked address to connect to; UnsafeUrl when refused. The
        caller hears only "address not allowed"; which address and why goes to the log, so a
        refusal does not tell an outsider what an internal name resolves to."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UnsafeUrl(f"invalid URL: {exc}") from None
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise UnsafeUrl(f"URL scheme {parsed.scheme or '(none)'!r} is not allowed; use http or https")
        host = parsed.host
        if not host:
            raise UnsafeUrl("URL has no host")
        if parsed.userinfo:
            raise UnsafeUrl("URLs with credentials are not accepted")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = self.resolver(host, port)
        if not addresses:
            raise FetchFailed(f"{host!r} has no address")
        checked = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        if not self.allow_private:
            for ip in checked:
                reason = self.policy(ip)
                if reason:
                    log.warning("fetch_refused", extra={"host": host, "reason": reason})
                    raise UnsafeUrl(ADDRESS_NOT_ALLOWED)
        return parsed, str(checked[0])

    async def fetch(self, url: str) -> ImageData:
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await self._fetch(url)
        except TimeoutError:
            raise FetchFailed(f"fetching the image took longer than {self.deadline_seconds:g}s") from None

    async def _fetch(self, url: str) -> ImageData:
        loop = asyncio.get_running_loop()
        current = url
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, trust_env=False, verify=self._verify
        ) as client:  # trust_env=False: no proxy from the environment may carry the request
            for _hop in range(MAX_REDIRECTS + 1):
                parsed, address = await loop.run_in_executor(self._resolver_pool, self.check_url, current)
                request = client.build_request(
                    "GET",
                    parsed.copy_with(host=address),
                    headers={"Host": parsed.netloc.decode("ascii"), "Accept": "image/*"},
                    extensions={"sni_hostname": parsed.host} if parsed.scheme == "https" else {},
                )
                try:
                    response = await self._send(client, request)
                except httpx.TimeoutException:
                    raise FetchFailed(f"timed out fetching {current}") from None
                except httpx.HTTPError as exc:
                    raise FetchFailed(f"cannot fetch {current}: {exc.__class__.__name__}") from None
                try:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchFailed(f"redirect without a Location from {current}")
                        current = str(parsed.join(location))
                        continue
                    if response.status_code != 200:
                        raise FetchFailed(f"{current} answered HTTP {response.status_code}")
                    return await self._read(response, current)
                finally:
                    await response.aclose()
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        return await client.send(request, stream=True)

    async def _read(self, response: httpx.Response, url: str) -> ImageData:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise ImageTooLarge(f"image is {int(declared):,} bytes; the limit is {self.max_bytes:,}")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise ImageTooLarge(f"image is over the limit of {self.max_bytes:,} bytes")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise FetchFailed(f"timed out reading {url}") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(f"cannot read {url}: {exc.__class__.__name__}") from None
        content = b"".join(chunks)
        mime = sniff_image_type(content)
        if mime is None:
            raise FetchFailed(f"{url} did not return an image (JPEG, PNG, WebP, GIF, BMP or TIFF)")
        return ImageData(content, mime, url)
