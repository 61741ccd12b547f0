"""Latency profiles and the simulated engine (in-process, scaled time): calibration points,
max-num-seqs with a waiting queue, decode time that grows with concurrency."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest
from fastapi.testclient import TestClient

from cli.commands import sim as sim_command
from model.sim.app import SimConfig, create_app
from model.sim.engine import Engine, Timing
from model.sim.faults import FaultRates
from model.sim.profiles import PROFILES


def test_profiles_hit_the_published_calibration_points() -> None:
    vllm, llama = PROFILES["vllm-bf16"], PROFILES["llamacpp-q4"]
    assert vllm.seconds_per_token(1) == pytest.approx(0.116)
    assert vllm.seconds_per_token(16) == pytest.approx(0.163)
    assert vllm.seconds_per_token(1) < vllm.seconds_per_token(8) < vllm.seconds_per_token(16)
    assert 1 / llama.seconds_per_token(1) == pytest.approx(25)
    assert 16 / llama.seconds_per_token(16) == pytest.approx(179)
    assert PROFILES["instant"].seconds_per_token(16) == 0


def run(engine: Engine, jobs: list[tuple[int, int]]) -> list[Timing]:
    async def main() -> list[Timing]:
        return list(await asyncio.gather(*(engine.generate(p, c) for p, c in jobs)))

    return asyncio.run(main())


def test_one_stream_decodes_at_the_profile_rate() -> None:
    scale = 0.05  # sleeps long enough that scheduler jitter on a busy box stays small
    (t,) = run(Engine(PROFILES["vllm-bf16"], time_scale=scale), [(0, 100)])
    expected = 100 * 0.116
    assert expected * 0.99 <= t.e2e_s / scale < expected * 2


def test_max_num_seqs_queues_the_rest() -> None:
    engine = Engine(PROFILES["vllm-bf16"], time_scale=0.01, max_num_seqs=2)
    timings = run(engine, [(0, 40)] * 4)
    queued = sorted(t.queue_s for t in timings)
    assert queued[0] < 0.01 and queued[1] < 0.01
    assert queued[2] > 0.02 and queued[3] > 0.02  # waited for a slot
    assert engine.running == 0 and engine.waiting == 0


def test_concurrency_slows_each_stream_but_raises_throughput() -> None:
    scale = 0.05
    (alone,) = run(Engine(PROFILES["llamacpp-q4"], time_scale=scale), [(0, 160)])
    together = run(Engine(PROFILES["llamacpp-q4"], time_scale=scale), [(0, 160)] * 16)
    slowest = max(t.e2e_s for t in together)
    assert slowest / scale >= 160 * 16 / 179 * 0.95  # each stream decodes at the 16-stream rate...
    assert 16 * 160 / slowest > 160 / alone.e2e_s * 3  # ...but 16 streams produce far more tokens/s


def test_start_up_fault_flags_apply_to_every_request() -> None:
    parser = argparse.ArgumentParser()
    sim_command.add_arguments(parser)
    args = parser.parse_args(["--profile", "instant", "--error-rate", "1"])
    assert (args.profile, args.error_rate) == ("instant", 1.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultRates(error_rate=2.0)

    client = TestClient(create_app(SimConfig(faults=FaultRates(error_rate=args.error_rate))))
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": '["salt"]'}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "ingredient_names", "schema": {}},
        },
    }
    resp = client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 500 and resp.headers["x-sous-simulated"] == "true"
    assert client.get("/admin/stats").json()["by_outcome"] == {"fault_error": 1}
    client.post("/admin/faults", json={"malformed_rate": 1.0})
    content = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    with pytest.raises(ValueError):
        json.loads(content)
