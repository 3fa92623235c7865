"""Peer (b): a bare aiohttp server that only broadcasts. The ceiling of the stack.

Same HTTP publish endpoint shape as the gateway: `POST /api/v1/events` with one
event or an array; for each event, `await ws.send_str(text)` to every
connection (one send() system call per delivery). No auth, no subscriptions,
no history, no metrics.

    python benchmarks/peers/bare_aiohttp.py --port 8801
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import orjson
from aiohttp import web

CONNS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("conns", set)


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=25.0)
    await ws.prepare(request)
    conns = request.app[CONNS]
    conns.add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        conns.discard(ws)
    return ws


async def publish(request: web.Request) -> web.Response:
    payload = orjson.loads(await request.read())
    events = payload if isinstance(payload, list) else [payload]
    conns = request.app[CONNS]
    for event in events:
        text = orjson.dumps(event).decode()
        for ws in list(conns):
            if not ws.closed:
                await ws.send_str(text)
    return web.json_response({"ids": [e.get("id") for e in events]}, status=202)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app() -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[CONNS] = set()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/api/v1/events", publish)
    app.router.add_get("/healthz", healthz)
    return app


async def main(host: str, port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"bare-aiohttp listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8801)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
