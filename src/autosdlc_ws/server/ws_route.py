"""`GET /ws`: authenticate before the upgrade, then hand the socket to a `Connection`."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from autosdlc_ws.core.envelope import new_id
from autosdlc_ws.core.session import ConnectionCore
from autosdlc_ws.errors import AuthenticationError, BrokerUnavailable, CloseCode
from autosdlc_ws.server.connection import Connection
from autosdlc_ws.server.credentials import json_error, request_credentials
from autosdlc_ws.server.keys import GATEWAY

log = logging.getLogger("autosdlc_ws.ws")

SUBPROTOCOL = "autosdlc.v1"


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    settings = gateway.settings
    if gateway.draining:
        return json_error(503, "shutting_down", "the server is shutting down; reconnect shortly",
                          headers={"Retry-After": "1"})
    origin = request.headers.get("Origin")
    if settings.allowed_origins and origin is not None and origin not in settings.allowed_origins:
        return json_error(403, "forbidden", "origin not allowed")
    address = gateway.client_address(request.remote, request.headers.get("X-Forwarded-For"))
    wait_ms = gateway.connect_attempt(address)
    if wait_ms:
        return json_error(429, "rate_limited", f"too many connection attempts; retry in {wait_ms} ms",
                          headers={"Retry-After": str(max(1, -(-wait_ms // 1000)))})
    credentials = request_credentials(request)
    principal = None
    now = gateway.now_ms()
    connection_id = new_id("conn")  # also the holder of the identity's connection slot
    if credentials:
        try:
            principal = gateway.authenticator.authenticate(credentials, now)
        except AuthenticationError as exc:
            return json_error(401, "unauthorized", exc.message)
        if not principal.grants.has_any("read"):
            return json_error(403, "forbidden", "credentials carry no read permission")
        del credentials  # this frame lives as long as the connection: keep only what it needs
        if not await gateway.acquire_identity_slot(principal, connection_id):
            return json_error(429, "too_many_connections",
                              f"at most {settings.max_connections_per_identity} connections per identity",
                              headers={"Retry-After": "5"})
    if not gateway.claim_address(address):
        if principal is not None:
            await gateway.release_identity_slot(principal.identity, connection_id)
        return json_error(429, "too_many_connections",
                          f"at most {settings.max_connections_per_ip} connections per client address",
                          headers={"Retry-After": "5"})
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        heartbeat=settings.heartbeat_interval_s,
        max_msg_size=settings.max_frame_bytes + 1,  # aiohttp refuses sizes >= its limit
        compress=False,  # app-level gzip instead: frames must be identical for all recipients
        autoping=True,
    )
    try:
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
    except BaseException:
        gateway.release_address(address)
        if principal is not None:
            await gateway.release_identity_slot(principal.identity, connection_id)
        raise
    core = ConnectionCore(
        settings=settings, authenticator=gateway.authenticator, connection_id=connection_id,
        session_id="", opened_at_ms=now, principal=principal,
        gzip=request.query.get("compression") == "gzip",
        identity_limit_external=gateway.identity_publish_limiter is not None,
    )
    conn = Connection(gateway, ws, transport, core, address)
    gateway.register(conn)
    try:
        if principal is not None:
            gateway.bind_identity(conn, principal)
            resumed, session_id = await gateway.start_session(
                conn, principal, request.query.get("session_id"), None)
            core.session_id = session_id
            conn.send_message(core.connect_frame(now, resumed=resumed))
            conn.send_message(core.auth_success_frame(now))
            if resumed:
                await gateway.replay(conn, session_id, request.query.get("last_event_id"))
        else:
            core.session_id = new_id("sess")
            conn.send_message(core.connect_frame(now, resumed=False))
        await conn.run()
    except asyncio.CancelledError:
        raise
    except BrokerUnavailable as exc:
        log.warning("connection %s: broker unavailable: %s", core.connection_id, exc)
        await conn.close(CloseCode.TRY_AGAIN_LATER, "broker unavailable; retry shortly")
    except Exception:
        log.exception("connection %s failed", core.connection_id)
        await conn.close(1011, "internal error")
    finally:
        gateway.release_address(address)
        await gateway.unregister(conn)
        if not conn.closing:
            conn.closing = True
        # aiohttp ends a connection that missed its pongs (or failed) by *closing*
        # the transport, which then waits for its unsent bytes to drain; a peer
        # that stopped reading never lets them. Cut such a peer off now, and any
        # other connection still not gone after the grace period.
        if ws.close_code == 1006 or ws.exception() is not None:
            _reap(transport)
        else:
            asyncio.get_running_loop().call_later(settings.shutdown_grace_s, _reap, transport)
    return ws


def _reap(transport: asyncio.BaseTransport) -> None:
    """Abort a transport that is still open, or still closing with unsent bytes."""
    if not isinstance(transport, asyncio.WriteTransport):
        return
    if not transport.is_closing() or transport.get_write_buffer_size():
        transport.abort()
