"""`GET /ws`: admit before the upgrade (`admission`), then hand the socket to a `Connection`."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from autosdlc_ws.core.connection_core import ConnectionCore
from autosdlc_ws.core.envelope import new_id
from autosdlc_ws.errors import BrokerUnavailable, CloseCode
from autosdlc_ws.server.admission import admit, release
from autosdlc_ws.server.connection import Connection
from autosdlc_ws.server.keys import GATEWAY
from autosdlc_ws.server.sessions import SessionStart

log = logging.getLogger("autosdlc_ws.ws")

SUBPROTOCOL = "autosdlc.v1"


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    settings = gateway.settings
    now = gateway.now_ms()
    admission = await admit(gateway, request, new_id("conn"), now)
    if isinstance(admission, web.Response):
        return admission
    principal, address = admission.principal, admission.address
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        heartbeat=settings.heartbeat_interval_s or None,  # 0: no pings (aiohttp would ping in a loop)
        max_msg_size=settings.max_frame_bytes + 1,  # aiohttp refuses sizes >= its limit
        compress=False,  # app-level gzip instead: frames must be identical for all recipients
        autoping=True,
    )
    try:
        await ws.prepare(request)
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("the client closed the connection during the handshake")
    except ConnectionError:
        # The client left during the handshake: its doing, not ours, so no error-level traceback.
        # aiohttp's own write of this response then fails quietly on the closed transport.
        await release(gateway, admission)
        log.debug("client %s left during the WebSocket handshake", admission.address)
        return web.Response(status=400)
    except BaseException:
        await release(gateway, admission)
        raise
    core = ConnectionCore(
        settings=settings, authenticator=gateway.authenticator, connection_id=admission.connection_id,
        session_id="", opened_at_ms=now, principal=principal,
        gzip=request.query.get("compression") == "gzip",
        batch=request.query.get("batch") in ("1", "true"),
        identity_limit_external=gateway.identity_publish_limiter is not None,
        type_limits=gateway.type_limits,
    )
    conn = Connection(gateway, ws, transport, core, address)
    gateway.register(conn)
    try:
        if principal is not None:

            async def announce(started: SessionStart) -> None:
                core.session_id = started.session_id
                conn.send_message(core.connect_frame(now, resumed=started.resumed))
                conn.send_message(core.auth_success_frame(now))

            await gateway.sessions.open(conn, principal, request.query.get("session_id"),
                                        request.query.get("last_event_id"), announce)
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
        await conn.close(CloseCode.INTERNAL, "internal error")
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
