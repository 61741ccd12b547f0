"""A Python client of the menu extraction API: submit, status, retry, quota, wait, events.

with SousClient("http://127.0.0.1:8000", token) as client:
    job_id = client.submit(file=Path("menu.jpg").read_bytes())["jobId"]
    job = client.wait(job_id)              # polls with backoff
    for event in client.events():          # or listen live (Server-Sent Events)
        ...
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from core.errors import SousError

TERMINAL = ("completed", "failed")
BODY_QUOTE_CHARS = 500  # how much of an answer that is not JSON the error quotes


class ApiClientError(SousError):
    """The API answered with an error; `code` is its error code, `body` the whole answer."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.body = body or {}


class SousClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> SousClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:BODY_QUOTE_CHARS], "code": "BAD_RESPONSE"}
        if response.status_code >= 400:
            raise ApiClientError(
                response.status_code, str(body.get("code", "HTTP_ERROR")), str(body.get("error", "")), body
            )
        return dict(body)

    def submit(
        self,
        *,
        image_url: str | None = None,
        file: bytes | Path | None = None,
        schema_version: str = "v1",
        prompt_version: str = "v1",
        force: bool = False,
    ) -> dict[str, Any]:
        """{success, jobId, cached, estimatedTime, status}; exactly one of image_url / file."""
        if (image_url is None) == (file is None):
            raise ValueError("give exactly one of image_url and file")
        options = {"schemaVersion": schema_version, "promptVersion": prompt_version}
        if image_url is not None:
            return self._json(
                self._http.post(
                    "/api/extraction/submit", json={"imageUrl": image_url, **options, "force": force}
                )
            )
        assert file is not None
        content = file.read_bytes() if isinstance(file, Path) else file
        return self._json(
            self._http.post(
                "/api/extraction/submit",
                files={"file": ("menu", content, "application/octet-stream")},
                data={**options, "force": "true" if force else "false"},
            )
        )

    def status(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._json(self._http.get(f"/api/extraction/status/{job_id}"))["job"]
        return job

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._json(self._http.post(f"/api/extraction/retry/{job_id}"))

    def quota(self) -> dict[str, Any]:
        return self._json(self._http.get("/api/extraction/quota"))

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 300.0,
        initial_delay: float = 0.25,
        max_delay: float = 5.0,
        factor: float = 1.6,
    ) -> dict[str, Any]:
        """Polls the job until it is completed or failed, backing off between polls."""
        deadline = time.monotonic() + timeout
        delay = initial_delay
        while True:
            job = self.status(job_id)
            if job["status"] in TERMINAL:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g}s")
            time.sleep(min(delay, remaining))
            delay = min(delay * factor, max_delay)

    def events(
        self, *, include_pings: bool = False, read_timeout: float | None = 60.0
    ) -> Iterator[dict[str, Any]]:
        """Server-Sent Events of this user's jobs: {"event": "ready" | "job" | "error" | "ping",
        "data": {...}}. The generator holds the connection; close it to leave."""
        timeout = httpx.Timeout(10.0, read=read_timeout)
        with self._http.stream("GET", "/api/extraction/events", timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                self._json(response)
            event: dict[str, Any] = {}
            for line in response.iter_lines():
                if line.startswith(":"):
                    if include_pings:
                        yield {"event": "ping", "data": line[1:].strip()}
                    continue
                if not line:
                    if "data" in event:
                        event.setdefault("event", "message")
                        yield event
                    event = {}
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    try:
                        event["data"] = json.loads(value)
                    except json.JSONDecodeError:
                        event["data"] = value
                elif field in ("event", "id"):
                    event[field] = value
