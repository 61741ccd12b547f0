"""Fixtures shared by the attack and limit suites (test_api_attacks.py, test_api_limits.py):
one `sous api` under gunicorn at LOG_LEVEL=INFO per module. Modules with a stack of their own
(test_api_e2e.py, test_supervisord.py) define `stack` and `http` themselves, which wins."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.attack_support import Stack, attack_stack


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, template_db: str, redis_server_url: str, tmp_path_factory) -> Iterator[Stack]:
    with attack_stack(pg_admin_url, template_db, redis_server_url, tmp_path_factory.mktemp("api")) as s:
        yield s


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client
