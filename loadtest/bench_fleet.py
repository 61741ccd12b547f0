"""Processes and probes of `make bench`: the simulator, the RQ fleet and the dispatcher as on a
box, started fresh for every load step and killed after it."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import redis
from rq import Worker

from core.jobs import INGREDIENT_QUEUE
from devtools.services import free_port

from .procs import SousProcess, scrape_metric, wait_http

SIM_REQUESTS_METRIC = "sous_sim_chat_requests_total"


class Fleet:
    """`sous sim` (vLLM bf16 profile), N `sous work` and one `sous dispatch`, as on a box."""

    def __init__(self, env: dict[str, str], workers: int, log_dir: Path) -> None:
        self.procs: list[SousProcess] = []
        port = free_port()
        self.sim_base = f"http://127.0.0.1:{port}"
        env = {**env, "LOCAL_LLM_BASE_URL": f"{self.sim_base}/v1"}
        try:
            sim = ["sim", "--port", str(port), "--profile", "vllm-bf16"]
            self.procs.append(SousProcess("sim", sim, env, log_dir, boost=True))
            wait_http(f"{self.sim_base}/health", 60, self.procs[0].tail)
            for i in range(workers):
                self.procs.append(
                    SousProcess(f"worker{i}", ["work", "--queues", INGREDIENT_QUEUE], env, log_dir)
                )
            self.procs.append(SousProcess("dispatch", ["dispatch"], env, log_dir))
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        for p in self.procs:
            p.kill()


def sim_requests(base: str) -> int:
    return int(scrape_metric(base, SIM_REQUESTS_METRIC))


def reset(db_url: str, redis_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE ingredient_match_queue, ingredient_canonical_cache, queue_runs")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def wait_workers(redis_url: str, n: int, timeout: float = 120) -> None:
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while Worker.count(connection=client) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {Worker.count(connection=client)} of {n} workers started")
        time.sleep(0.5)
    client.close()
