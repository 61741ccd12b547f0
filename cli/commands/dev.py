"""sous dev up|down: the whole stack on this host (what `make dev` / `make dev-down` run)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from devtools.stack import BIN, LocalStack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["up", "down", "services"], default="up")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo data")
    parser.add_argument("--state", type=Path, default=Path(".dev"), help="where state and logs live")
    parser.add_argument("--json", action="store_true", help="`services`: print the settings as JSON")


def run(args: argparse.Namespace) -> int:
    stack = LocalStack(args.state)
    if args.action == "down":
        stack.stop()
        stack.stop_services()
        print(f"stopped the stack and the services under {args.state}/")
        return 0
    services = stack.start_services()
    if args.action == "services":
        if args.json:
            print(json.dumps(services))
            return 0
        for key, value in services.items():
            print(f"{key}={value}")
        return 0
    env = stack.stack_env(services)
    stack.start(env)
    if not args.no_demo:
        subprocess.run([str(BIN / "sous"), "demo", "--wait", "120"], env={**os.environ, **env}, check=True)
    api = f"http://127.0.0.1:{env['API_PORT']}"
    simulated = env.get("SOUS_SIM_AUTOSTART") == "true"
    print("\nsous is running on this host (make dev-down stops it):")
    print(f"  API          {api}   (OpenAPI: {api}/docs, {api}/redoc)")
    print(f"  dashboard    {api}/dashboard   (sign in with SERVICE_API_KEY from {args.state}/env)")
    print(
        f"  model        {env['LOCAL_LLM_BASE_URL']}"
        + ("   (the simulator: figures are simulated)" if simulated else "")
    )
    print(f"  database     {env['DATABASE_URL']}")
    print(f"  redis        {env['REDIS_URL']}")
    print(f"  logs         {args.state}/stack.log")
    print(f"  CLI          source {args.state}/env && .venv/bin/sous status")
    print(f"  a user JWT   source {args.state}/env && .venv/bin/sous token --user <uuid>")
    return 0
