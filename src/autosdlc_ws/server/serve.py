"""The process that serves the gateway: one worker, or the supervisor of several."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
import threading
from typing import Any

from aiohttp import web

from autosdlc_ws.broker.registry import make_backend
from autosdlc_ws.broker.urls import redact_url
from autosdlc_ws.config import Settings
from autosdlc_ws.server.app import build_app
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.server.refill_steering import steer_until_refilled
from autosdlc_ws.server.workers import supervise, worker_index

log = logging.getLogger("autosdlc_ws.app")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    return ctx


def listening_sockets(site: web.TCPSite) -> list[Any]:
    """The sockets a started site listens on (aiohttp keeps its asyncio server private)."""
    server = getattr(site, "_server", None)
    return list(getattr(server, "sockets", None) or ())


#: How long past the drain's grace time a shutting-down process may still take
#: (closing the broker, saving sessions) before it exits regardless.
SHUTDOWN_MARGIN_S = 15.0


def _exit_at_the_latest(seconds: float) -> None:
    """A drain that cannot finish (every session save waiting on a Redis that is
    gone, 35,000 of them) must not keep a worker alive past its supervisor: a
    thread, not a loop callback, so a busy loop cannot hold it off."""
    def give_up() -> None:
        os.write(2, f"autosdlc-ws: pid {os.getpid()} still shutting down after {seconds:.0f} s; exiting\n".encode())
        os._exit(70)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


async def serve(settings: Settings, *, ready: asyncio.Event | None = None, replacement: bool = False) -> None:
    """Run one worker until SIGTERM/SIGINT, then drain and exit.

    With `workers` > 1 (and not already inside a worker) this process becomes
    the parent that runs and supervises the workers (`server.workers`). A
    `replacement` worker (one that died was restarted) takes every new
    connection of the port until it has caught up (`server.refill_steering`)."""
    index = worker_index()
    if settings.workers > 1 and index is None:
        await supervise(settings)
        return
    gateway = Gateway(settings, backend=make_backend(settings))
    app = build_app(gateway)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=settings.shutdown_grace_s,
                           keepalive_timeout=settings.http_idle_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context(settings),
                       reuse_port=settings.workers > 1)
    await site.start()
    refill: asyncio.Task[None] | None = None
    if replacement and settings.workers > 1:
        refill = asyncio.get_running_loop().create_task(steer_until_refilled(
            listening_sockets(site), settings.workers, lambda: len(gateway.connections),
            gateway.collector.sibling_connection_counts))
    scheme = "https" if settings.tls_cert else "http"
    log.info("gateway listening on %s://%s:%d (broker=%s)", scheme, settings.host, settings.port,
             redact_url(settings.broker))
    who = f"worker {index} (pid {os.getpid()}) " if index is not None else ""
    # One write for the whole line: workers share the supervisor's stdout, and print()
    # on an unbuffered stream writes the text and the newline apart, so two workers'
    # lines could run together.
    sys.stdout.write(f"autosdlc-ws: {who}listening on {scheme}://{settings.host}:{settings.port} "
                     f"(WebSocket at /ws, broker {redact_url(settings.broker)})\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down: draining %d connections", len(gateway.connections))
    _exit_at_the_latest(settings.shutdown_grace_s + SHUTDOWN_MARGIN_S)
    if refill is not None:
        refill.cancel()  # detaches the steering: a draining worker must not be sent new connections
    await runner.cleanup()
