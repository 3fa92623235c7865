"""The admin API's HTTP routes (CONTRACT §10): one deployment, one view.

Each route checks credentials first (401 without, 403 without `admin` on
`system`: before any id is looked at, so an unknown id cannot be probed),
parses its input, and hands the question to `admin_view`, which asks every
node of the deployment through the control channel. An answer some node did
not give in time comes back with `"partial": true` and the missing nodes
named, never later than the channel's timeout (1.5 s).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from autosdlc_ws.core.auth import Principal
from autosdlc_ws.core.permissions import SYSTEM
from autosdlc_ws.server import admin_view
from autosdlc_ws.server.credentials import json_error
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.server.http_routes import authenticate
from autosdlc_ws.server.keys import GATEWAY

log = logging.getLogger("autosdlc_ws.admin")

#: A logging filter is a few lists of names; anything larger is refused.
MAX_LOGGING_BODY_BYTES = 65536


def _gateway(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


def require_admin(request: web.Request) -> Principal | web.Response:
    """The admin principal, or the 401/403 answer."""
    principal = authenticate(request)
    if isinstance(principal, web.Response):
        return principal
    if not principal.grants.allows("admin", SYSTEM):
        return json_error(403, "forbidden", "admin permission required")
    return principal


AdminHandler = Callable[[web.Request, Principal], Awaitable[web.Response]]


def admin_only(handler: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The route runs with the admin principal; without one it answers 401/403 (before
    any id in the path is looked at)."""

    @functools.wraps(handler)
    async def route(request: web.Request) -> web.Response:
        principal = require_admin(request)
        if isinstance(principal, web.Response):
            return principal
        return await handler(request, principal)

    return route


def _not_found(exc: admin_view.UnknownConnection) -> web.Response:
    message = "no such connection"
    if exc.missing_nodes:  # it may be on a node that did not answer
        message += f" on the nodes that answered (no reply from {', '.join(exc.missing_nodes)})"
    return json_error(404, "not_found", message)


@admin_only
async def list_nodes(request: web.Request, principal: Principal) -> web.Response:
    return web.json_response(await admin_view.list_nodes(_gateway(request).control))


@admin_only
async def list_connections(request: web.Request, principal: Principal) -> web.Response:
    try:
        filters = admin_view.connection_filters({k: request.query.getall(k) for k in request.query})
    except ValueError as exc:
        return json_error(422, "invalid_message", str(exc))
    return web.json_response(await admin_view.list_connections(
        _gateway(request).control, subject=filters.get("subject"), node_id=filters.get("node_id")))


@admin_only
async def get_connection(request: web.Request, principal: Principal) -> web.Response:
    try:
        found = await admin_view.find_connection(_gateway(request).control, request.match_info["id"])
    except admin_view.UnknownConnection as exc:
        return _not_found(exc)
    return web.json_response(found)


@admin_only
async def close_connection(request: web.Request, principal: Principal) -> web.Response:
    connection_id = request.match_info["id"]
    try:
        closed = await admin_view.close_connection(_gateway(request).control, connection_id, principal.subject)
    except admin_view.UnknownConnection as exc:
        return _not_found(exc)
    log.info("admin %s closed connection %s", principal.subject, connection_id)
    return web.json_response(closed)


@admin_only
async def list_errors(request: web.Request, principal: Principal) -> web.Response:
    return web.json_response(await admin_view.merged_errors(_gateway(request).control))


@admin_only
async def get_logging(request: web.Request, principal: Principal) -> web.Response:
    return web.json_response(await admin_view.get_logging(_gateway(request).control))


@admin_only
async def put_logging(request: web.Request, principal: Principal) -> web.Response:
    try:
        body: Any = orjson.loads(await request.content.read(MAX_LOGGING_BODY_BYTES))
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        applied = await admin_view.set_logging(_gateway(request).control, body)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        return json_error(422, "invalid_message", str(exc))
    log.info("message logging changed by %s: %s", principal.subject,
             admin_view.logging_settings(applied))
    return web.json_response(applied)


@admin_only
async def subscription_counts(request: web.Request, principal: Principal) -> web.Response:
    return web.json_response(await admin_view.subscription_counts(_gateway(request).control))


def add_admin_routes(app: web.Application) -> None:
    """Every `/api/v1` admin endpoint of CONTRACT §10."""
    app.router.add_get("/api/v1/nodes", list_nodes)
    app.router.add_get("/api/v1/connections", list_connections)
    app.router.add_get("/api/v1/connections/{id}", get_connection)
    app.router.add_delete("/api/v1/connections/{id}", close_connection)
    app.router.add_get("/api/v1/errors", list_errors)
    app.router.add_get("/api/v1/logging", get_logging)
    app.router.add_put("/api/v1/logging", put_logging)
    app.router.add_get("/api/v1/subscriptions", subscription_counts)
