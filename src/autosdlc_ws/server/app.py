"""The aiohttp application: its routes and its start-up and shutdown hooks (`serve` runs it)."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from aiohttp import web

from autosdlc_ws.server import http_routes
from autosdlc_ws.server.admin_routes import add_admin_routes
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.server.keys import GATEWAY, GITHUB_DEDUP
from autosdlc_ws.server.monitor import SystemMonitor
from autosdlc_ws.server.ws_route import websocket_handler
from autosdlc_ws.sources.github import DeliveryDeduplicator

log = logging.getLogger("autosdlc_ws.app")

STATIC_DIR = Path(str(resources.files("autosdlc_ws").joinpath("static")))

FALLBACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>AutoSDLC gateway</title></head>
<body><h1>AutoSDLC WebSocket gateway</h1>
<p>The dashboard assets are not built. Run <code>make dashboard</code> (or <code>make run</code>).</p>
<ul><li><a href="/healthz">/healthz</a></li><li><a href="/readyz">/readyz</a></li>
<li><a href="/metrics">/metrics</a></li><li><a href="/schemas/">/schemas/</a></li></ul></body></html>"""


async def dashboard(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if index.is_file():
        # The built page (dashboard/, Vite) loads only its own /assets and talks
        # only to this origin's /ws: a strict policy costs it nothing.
        host = request.host
        # 'self' covers ws(s) to this host in CSP 3; older browsers need it named.
        ws_origins = (f" ws://{host} wss://{host}"
                      if host and all(c.isalnum() or c in ".-:[]" for c in host) else "")
        return web.FileResponse(index, headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src 'self'{ws_origins}; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'; object-src 'none'"),
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        })
    return web.Response(text=FALLBACK_PAGE, content_type="text/html")


async def service_worker(_: web.Request) -> web.StreamResponse:
    """The dashboard's service worker (dashboard/src/pwa/sw.ts, built to static/sw.js).

    Served from the root because a worker cannot control pages above its own
    path: from /assets/ it could not keep the page at `/` for offline use."""
    script = STATIC_DIR / "sw.js"
    if not script.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(script, headers={
        "Content-Type": "text/javascript; charset=utf-8",
        # A new deploy's worker must reach browsers at once, not after a cache expiry.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    })


def build_app(gateway: Gateway) -> web.Application:
    settings = gateway.settings
    app = web.Application(client_max_size=max(settings.http_publish_max_bytes,
                                               settings.github_webhook_max_bytes) + 1024)
    app[GATEWAY] = gateway
    app[GITHUB_DEDUP] = DeliveryDeduplicator()
    app.router.add_get("/ws", websocket_handler)
    app.router.add_post("/api/v1/events", http_routes.publish_events)
    add_admin_routes(app)
    app.router.add_post("/webhooks/github", http_routes.github_webhook)
    app.router.add_get("/metrics", http_routes.metrics)
    app.router.add_get("/healthz", http_routes.healthz)
    app.router.add_get("/readyz", http_routes.readyz)
    app.router.add_get("/schemas/", http_routes.schema_index)
    app.router.add_get("/schemas/{type}.json", http_routes.schema)
    if settings.dashboard:
        app.router.add_get("/", dashboard)
        app.router.add_get("/sw.js", service_worker)
        if STATIC_DIR.is_dir() and (STATIC_DIR / "assets").is_dir():
            app.router.add_static("/assets", STATIC_DIR / "assets")

    monitor = SystemMonitor(gateway)

    async def on_startup(_: web.Application) -> None:
        await gateway.start()
        await monitor.start()

    async def on_shutdown(_: web.Application) -> None:
        await monitor.stop()
        await gateway.drain()

    async def on_cleanup(_: web.Application) -> None:
        await gateway.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
