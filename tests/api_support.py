"""Helpers shared by the API and menu tests: settings, tokens, images, processes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from struct import pack

import httpx
from PIL import Image

from core.auth import mint_token
from core.settings import Settings
from devtools.procs import stop_process

JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"
SERVICE_KEY = "test-service-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


def api_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        supabase_jwt_secret=JWT_SECRET,
        service_api_key=SERVICE_KEY,
        llm_providers="rules",
        **overrides,  # type: ignore[arg-type]
    )


def api_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCAL_LLM", "OPENAI", "GEMINI"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SUPABASE_JWT_SECRET=JWT_SECRET,
        SERVICE_API_KEY=SERVICE_KEY,
        LLM_PROVIDERS="rules",
        LOG_LEVEL="INFO",  # the appliance default (.env.example); issue 13
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def token(user_id: uuid.UUID | str, **kwargs: object) -> str:
    return mint_token(JWT_SECRET, user_id, **kwargs)  # type: ignore[arg-type]


def auth(user_id: uuid.UUID | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user_id)}"}


def png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small distinct PNG per seed."""
    img = Image.new("L", size, seed % 256)
    img.putpixel((seed % size[0], (seed // size[0]) % size[1]), (seed * 7 + 1) % 256)
    img.putpixel((0, 0), (seed // 256) % 256)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width: int = 10_000, height: int = 10_000) -> bytes:
    """A real decompression bomb: a valid grayscale PNG of width x height zero pixels that
    compresses to ~100 kB (100 megapixels when decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return pack(">I", len(data)) + kind + data + pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    parts = [comp.compress(row) for _ in range(height)]
    idat = b"".join(parts) + comp.flush()
    header = pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def start_worker(env: dict[str, str], queues: str = "menus") -> subprocess.Popen[bytes]:
    """A real RQ worker process: `sous work` when it exists, else rq's own worker."""
    sous = ROOT / ".venv" / "bin" / "sous"
    if (ROOT / "worker" / "commands" / "work.py").exists():
        cmd = [str(sous), "work", "--queues", queues]
    else:
        cmd = [sys.executable, "-m", "rq.cli", "worker", "--url", env["REDIS_URL"], *queues.split(",")]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    stop_process(proc, timeout=15)


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def wait_job(
    client: httpx.Client, job_id: str, headers: dict[str, str], timeout: float = 60.0
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/api/extraction/status/{job_id}", headers=headers).json()["job"]
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not finished within {timeout}s")
