"""`sous sim`: serve the OpenAI-compatible vLLM simulator (answers labelled simulated)."""

from __future__ import annotations

import argparse

from core.logging import configure_logging
from model.sim.app import SimConfig
from model.sim.faults import FaultRates
from model.sim.profiles import PROFILES
from model.sim.server import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="vllm-bf16")
    parser.add_argument("--served-model-name", default="qwen3-8b-instruct")
    parser.add_argument("--max-num-seqs", type=int, default=None, help="default: the profile's")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every simulated delay")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered HTTP 500")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="share of requests that hang")
    parser.add_argument("--malformed-rate", type=float, default=0.0, help="share answered with broken JSON")
    parser.add_argument(
        "--rejected-rate", type=float, default=0.0, help='share answering "not food" for every ingredient'
    )
    parser.add_argument("--hang-seconds", type=float, default=600.0, help="how long a timeout fault hangs")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    try:
        faults = FaultRates(args.error_rate, args.timeout_rate, args.malformed_rate, args.rejected_rate)
    except ValueError as exc:
        raise SystemExit(f"sous sim: {exc}") from None
    config = SimConfig(
        profile=args.profile,
        served_model_name=args.served_model_name,
        faults=faults,
        seed=args.seed,
        time_scale=args.time_scale,
        max_num_seqs=args.max_num_seqs,
        hang_seconds=args.hang_seconds,
    )
    serve(config, host=args.host, port=args.port)
    return 0
