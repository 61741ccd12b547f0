"""Runs the simulator under uvicorn (the entrypoint `sous sim` calls)."""

from __future__ import annotations

import uvicorn

from model.sim.app import SimConfig, create_app


def serve(config: SimConfig, host: str = "127.0.0.1", port: int = 8001, log_level: str = "warning") -> None:
    app = create_app(config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=2)
