"""Who may open a WebSocket, decided in one place before the upgrade.

In order: the server is not draining and has room (its open-files limit,
`connection_capacity`), the origin is allowed, the client
address is under its connect rate, the credentials (when given in the
request) are valid and carry a read permission, the identity has a free
connection slot (on every worker), the address is under its connection cap.
Whatever was taken is given back when a later check (or the upgrade) fails.
A client that authenticates in-band later takes its identity slot through
the same `Gateway.take_identity_slot`.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from aiohttp import web

from autosdlc_ws.config import Settings
from autosdlc_ws.core.auth import Principal
from autosdlc_ws.errors import AuthenticationError
from autosdlc_ws.server.credentials import json_error, request_credentials
from autosdlc_ws.server.gateway import Gateway

#: File descriptors kept for everything but client sockets: Redis pools (2 x 64),
#: the control and Pub/Sub connections, listening sockets, logs, /proc reads.
RESERVED_FDS = 256


def connection_capacity(settings: Settings) -> int:
    """`max_connections_per_process`, or the open-files limit less `RESERVED_FDS`."""
    if settings.max_connections_per_process:
        return settings.max_connections_per_process
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    return max(1, soft - RESERVED_FDS)


@dataclass(frozen=True, slots=True)
class Admitted:
    """An admitted upgrade: what it holds until `release` (or the gateway's `unregister`)."""

    connection_id: str  # also the holder of the identity's connection slot
    address: str
    principal: Principal | None  # None: the client authenticates in-band


async def admit(gateway: Gateway, request: web.Request, connection_id: str,
                now_ms: int) -> Admitted | web.Response:
    """Admit the upgrade `request`, or the HTTP answer refusing it."""
    settings = gateway.settings
    if gateway.draining:
        return json_error(503, "shutting_down", "the server is shutting down; reconnect shortly",
                          headers={"Retry-After": "1"})
    capacity = connection_capacity(settings)
    if len(gateway.connections) >= capacity:
        # near the process's open-files limit: refuse cleanly (another worker or host
        # may have room) instead of letting accept() fail in a loop
        return json_error(503, "at_capacity",
                          f"this server process holds its maximum of {capacity} connections; retry "
                          "(another worker may take it)", headers={"Retry-After": "2"})
    origin = request.headers.get("Origin")
    if settings.allowed_origins and origin is not None and origin not in settings.allowed_origins:
        return json_error(403, "forbidden", "origin not allowed")
    address = gateway.client_address(request.remote, request.headers.get("X-Forwarded-For"))
    wait_ms = gateway.connect_attempt(address)
    if wait_ms:
        return json_error(429, "rate_limited", f"too many connection attempts; retry in {wait_ms} ms",
                          headers={"Retry-After": str(max(1, -(-wait_ms // 1000)))})
    principal = None
    credentials = request_credentials(request)
    if credentials:
        try:
            principal = gateway.authenticator.authenticate(credentials, now_ms)
        except AuthenticationError as exc:
            return json_error(401, "unauthorized", exc.message)
        if not principal.grants.has_any("read"):
            return json_error(403, "forbidden", "credentials carry no read permission")
        if not await gateway.take_identity_slot(principal, connection_id):
            return json_error(429, "too_many_connections",
                              f"at most {settings.max_connections_per_identity} connections per identity",
                              headers={"Retry-After": "5"})
    if not gateway.claim_address(address):
        await gateway.release_identity_slot(connection_id)
        return json_error(429, "too_many_connections",
                          f"at most {settings.max_connections_per_ip} connections per client address",
                          headers={"Retry-After": "5"})
    return Admitted(connection_id, address, principal)


async def release(gateway: Gateway, admitted: Admitted) -> None:
    """Give back what `admit` took, for an upgrade that did not complete."""
    gateway.release_address(admitted.address)
    await gateway.release_identity_slot(admitted.connection_id)
