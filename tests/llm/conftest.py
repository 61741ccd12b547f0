"""The real llama.cpp lane: collected only when scripts/test-llm.sh (make test-llm) has started
a llama-cpp-python server and set SOUS_LLM_URL; plain `pytest` skips this folder entirely."""

from __future__ import annotations

import os

import pytest

collect_ignore_glob = [] if os.environ.get("SOUS_LLM_URL") else ["test_*.py"]


@pytest.fixture(scope="session")
def llm_url() -> str:
    return os.environ["SOUS_LLM_URL"]


@pytest.fixture(scope="session")
def llm_model() -> str:
    return os.environ.get("SOUS_LLM_MODEL", "smollm2")
