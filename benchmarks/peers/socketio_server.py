"""Peer (c): python-socketio (AsyncServer on aiohttp, in-memory manager, room emit).

Every client that connects joins room "bench"; `POST /api/v1/events` (one event
or an array) emits each event to the room: `await sio.emit("event", event,
room="bench")`, the way a python-socketio application broadcasts.

    python benchmarks/peers/socketio_server.py --port 8802
"""

from __future__ import annotations

import orjson
import socketio
from aiohttp import web

ROOM = "bench"


def build_app() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False,
                               ping_interval=25, ping_timeout=20, max_http_buffer_size=16 * 1024 * 1024)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    sio.attach(app)

    @sio.event
    async def connect(sid: str, environ: dict[str, object]) -> None:
        await sio.enter_room(sid, ROOM)

    async def publish(request: web.Request) -> web.Response:
        payload = orjson.loads(await request.read())
        events = payload if isinstance(payload, list) else [payload]
        for event in events:
            await sio.emit("event", event, room=ROOM)
        return web.json_response({"ids": [e.get("id") for e in events]}, status=202)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_post("/api/v1/events", publish)
    app.router.add_get("/healthz", healthz)
    return app



if __name__ == "__main__":
    from serve_peer import run_peer  # the script's own folder is on sys.path

    run_peer(build_app, "socketio", 8802)
