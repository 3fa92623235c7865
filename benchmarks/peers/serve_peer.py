"""Run a peer's aiohttp app until SIGTERM/SIGINT: the part every peer shares."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable

from aiohttp import web


async def _serve(build_app: Callable[[], web.Application], name: str, host: str, port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"{name} listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def run_peer(build_app: Callable[[], web.Application], name: str, default_port: int) -> None:
    parser = argparse.ArgumentParser(description=f"{name}: a benchmark peer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    asyncio.run(_serve(build_app, name, args.host, args.port))
