"""Request body size limits, enforced before any route reads the body; and credentials,
checked before the body is read at all.

A pure ASGI middleware: a declared Content-Length over the limit is refused at once; a chunked
body is counted as it streams. Either way the body is drained (up to a bound) before the 413
goes out, so the client reads the answer instead of a reset connection.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_LIMIT = 64 * 1024 * 1024  # past this the connection is simply answered and closed


class BodySizeLimit:
    def __init__(self, app: ASGIApp, limit_for: Callable[[str], tuple[int, str]]) -> None:
        self.app = app
        self.limit_for = limit_for  # path -> (max bytes, error code)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, code = self.limit_for(scope["path"])
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._drain(receive, int(declared))
            await self._refuse(send, limit, code)
            return
        # Read the body up front (bounded), then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            more = message.get("more_body", False)
            if size > limit:
                if more:
                    await self._drain(receive, DRAIN_LIMIT)
                await self._refuse(send, limit, code)
                return
            chunks.append(body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Receive, up_to: int) -> None:
        if up_to > DRAIN_LIMIT:
            return
        seen = 0
        while seen <= up_to:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    @staticmethod
    async def _refuse(send: Send, limit: int, code: str) -> None:
        body = json.dumps({"error": f"request body over the limit of {limit:,} bytes", "code": code}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class AuthenticateFirst:
    """Routes that take credentials AND a body are refused before one byte of the body is read
    when the credentials are missing or wrong: BodySizeLimit (inside this middleware) buffers
    a body up front, and an anonymous caller must not make the server hold 10 MB for nothing.
    `refusal(scope)` returns the 401 response, or None to let the request through (the route's
    own dependency checks the credentials again, as usual)."""

    def __init__(self, app: ASGIApp, refusal: Callable[[Scope], Awaitable[Response | None]]) -> None:
        self.app = app
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            response = await self.refusal(scope)
            if response is not None:
                # The body was never read: close the connection rather than parse it as the
                # next request.
                response.headers["connection"] = "close"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
