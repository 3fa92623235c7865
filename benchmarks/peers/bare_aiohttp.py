"""Peer (b): a bare aiohttp server that only broadcasts. The ceiling of the stack.

Same HTTP publish endpoint shape as the gateway: `POST /api/v1/events` with one
event or an array; for each event, `await ws.send_str(text)` to every
connection (one send() system call per delivery). No auth, no subscriptions,
no history, no metrics.

    python benchmarks/peers/bare_aiohttp.py --port 8801
"""

from __future__ import annotations

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



if __name__ == "__main__":
    from serve_peer import run_peer  # the script's own folder is on sys.path

    run_peer(build_app, "bare-aiohttp", 8801)
