"""HTTP routes: publish API, health, schemas, metrics, GitHub webhooks (admin: `admin_routes`)."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from autosdlc_ws.core import messages
from autosdlc_ws.core.auth import Principal
from autosdlc_ws.core.connection_core import prepare_event
from autosdlc_ws.core.envelope import check_depth
from autosdlc_ws.core.permissions import may_access_event
from autosdlc_ws.errors import AuthenticationError, BrokerUnavailable, ProtocolError
from autosdlc_ws.server.credentials import json_error, request_credentials
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.server.keys import GATEWAY, GITHUB_DEDUP
from autosdlc_ws.sources.github import map_webhook, verify_signature

log = logging.getLogger("autosdlc_ws.http")

MAX_EVENTS_PER_REQUEST = 1000


def _gateway(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


def authenticate(request: web.Request) -> Principal | web.Response:
    gateway = _gateway(request)
    credentials = request_credentials(request, allow_query=False, allow_cookie=False)
    if not credentials:
        return json_error(401, "unauthorized", "credentials required (Authorization: Bearer or X-API-Key)")
    try:
        return gateway.authenticator.authenticate(credentials, gateway.now_ms())
    except AuthenticationError as exc:
        return json_error(401, "unauthorized", exc.message)


async def publish_events(request: web.Request) -> web.Response:
    gateway = _gateway(request)
    principal = authenticate(request)
    if isinstance(principal, web.Response):
        return principal
    if not principal.grants.has_any("publish"):
        return json_error(403, "forbidden", "credentials carry no publish permission")
    wait_ms = await gateway.http_publish_limiter.take(principal.identity)  # shared by every worker
    if wait_ms:
        gateway.count_rate_limited("")  # no type known yet: counted as `other`
        return _too_many(f"publish rate exceeded; retry in {wait_ms} ms", wait_ms)
    max_bytes = gateway.settings.http_publish_max_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        return json_error(413, "too_large", f"body exceeds {max_bytes} bytes")
    body = await _read_body(request, max_bytes)
    if body is None:
        return json_error(413, "too_large", f"body exceeds {max_bytes} bytes")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return json_error(422, "invalid_json", f"body is not valid JSON: {exc.msg}", path="")
    try:  # an array of events is one level more than each event may have
        check_depth(payload, body, gateway.settings.max_json_depth + isinstance(payload, list))
    except ProtocolError as exc:
        return json_error(422, exc.code.value, exc.message, path="")
    batch = isinstance(payload, list)
    items: list[Any] = payload if batch else [payload]
    if not items:
        return json_error(422, "invalid_message", "empty array: nothing to publish", path="")
    if len(items) > MAX_EVENTS_PER_REQUEST:
        return json_error(413, "too_large", f"at most {MAX_EVENTS_PER_REQUEST} events per request")
    now = gateway.now_ms()
    events = []
    for index, item in enumerate(items):
        prefix = f"[{index}]" if batch else ""
        try:
            if not isinstance(item, dict):
                return json_error(422, "invalid_message", "an event must be a JSON object", path=prefix)
            event = prepare_event(item, now)
            messages.validate_message(event)
            if event["type"] not in messages.EVENT_TYPES:
                return json_error(422, "invalid_message", f"{event['type']} is not an event type",
                                  path=_join(prefix, "type"))
        except ProtocolError as exc:
            return json_error(422, exc.code.value, exc.message, path=_join(prefix, exc.path or ""))
        if not may_access_event(principal.grants, "publish", event["type"], event["data"]):
            return json_error(403, "forbidden",
                              f"no publish permission for the resources of event {prefix or 0}")
        events.append(event)
    refused = await _type_limits_refusal(gateway, principal.identity, events)
    if refused is not None:
        return refused
    try:
        receipts = await gateway.publish(events)
    except BrokerUnavailable as exc:
        return json_error(503, "unavailable", f"broker unavailable: {exc}", headers={"Retry-After": "1"})
    return web.json_response({"ids": [r.id for r in receipts]}, status=202)


def _too_many(message: str, wait_ms: int) -> web.Response:
    return json_error(429, "rate_limited", message, headers={"Retry-After": str(max(1, -(-wait_ms // 1000)))})


async def _type_limits_refusal(gateway: Gateway, identity: str, events: list[dict[str, Any]]) -> web.Response | None:
    """Config `rate_limits`: each limited type of the request is charged its number
    of events; a request with any type over its limit is refused as a whole
    (buckets charged before the refusal stay charged: one broker call each)."""
    charges = gateway.type_limits.batch_charges((e["type"] for e in events), identity)
    for charge in charges:
        if charge.cost > charge.burst:  # could never be admitted: retrying would not help
            return json_error(413, "too_large", f"{charge.cost} {charge.type} events in one request; "
                                                f"its rate limit admits at most {charge.burst:g} at once")
    for charge in charges:
        wait_ms = await gateway.take_type_limit(charge)
        if wait_ms:
            gateway.count_rate_limited(charge.type)
            return _too_many(f"too many {charge.type} events; retry in {wait_ms} ms", wait_ms)
    return None


async def _read_body(request: web.Request, max_bytes: int) -> bytes | None:
    """The whole body, or None past `max_bytes`.

    `StreamReader.read(n)` returns what has arrived so far (at most n bytes), not
    n bytes: one call truncates any body that comes in more than one TCP read."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}.{path}" if path else prefix


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gateway = _gateway(request)
    try:
        ready = await gateway.backend.log.ready()
    except Exception:
        ready = False
    if gateway.draining:
        return web.json_response({"status": "draining"}, status=503)
    return web.json_response({"status": "ready" if ready else "broker unavailable",
                              "broker": gateway.backend.name}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(_gateway(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _schema_bytes(type_name: str) -> bytes | None:
    if type_name not in messages.MESSAGE_TYPES:
        return None
    return resources.files("autosdlc_ws").joinpath("schemas", f"{type_name}.json").read_bytes()


async def schema(request: web.Request) -> web.Response:
    name = request.match_info["type"]
    body = _schema_bytes(name)
    if body is None:
        return json_error(404, "not_found", f"no message type {name!r}")
    return web.Response(body=body, content_type="application/schema+json")


async def schema_index(request: web.Request) -> web.Response:
    return web.json_response({"types": list(messages.MESSAGE_TYPES),
                              "schemas": [f"/schemas/{t}.json" for t in messages.MESSAGE_TYPES]})


async def github_webhook(request: web.Request) -> web.Response:
    """GitHub deliveries; the order of checks is documented in docs/github-webhooks.md."""
    gateway = _gateway(request)
    settings = gateway.settings
    stats = gateway.stats
    body = await _read_body(request, settings.github_webhook_max_bytes)
    if body is None:
        stats.webhooks["too_large"] += 1
        return json_error(413, "too_large", f"body exceeds {settings.github_webhook_max_bytes} bytes")
    secret = (settings.github_webhook_secret or "").encode()
    if not verify_signature(secret, body, request.headers.get("X-Hub-Signature-256")):
        stats.webhooks["bad_signature"] += 1
        return json_error(401, "unauthorized", "missing or invalid X-Hub-Signature-256")
    event_name = request.headers.get("X-GitHub-Event", "")
    delivery = request.headers.get("X-GitHub-Delivery", "")
    if not event_name or not delivery:
        stats.webhooks["invalid"] += 1
        return json_error(400, "invalid_message", "X-GitHub-Event and X-GitHub-Delivery are required")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        stats.webhooks["invalid"] += 1
        return json_error(422, "invalid_json", f"body is not valid JSON: {exc.msg}")
    if not isinstance(payload, dict):
        stats.webhooks["invalid"] += 1
        return json_error(422, "invalid_json", "body must be a JSON object")
    if event_name == "ping":
        stats.webhooks["ping"] += 1
        return web.json_response({"ok": True, "zen": payload.get("zen", "pong")})
    try:
        event = map_webhook(event_name, payload, delivery_id=delivery, now_ms=gateway.now_ms())
    except ValueError as exc:
        stats.webhooks["invalid"] += 1
        return json_error(422, "invalid_message", f"cannot map {event_name} payload: {exc}")
    dedup = request.app[GITHUB_DEDUP]
    if dedup.seen(delivery):
        stats.webhooks["duplicate"] += 1
        return web.json_response({"duplicate": True})
    if event is None:
        stats.webhooks[f"unmapped:{event_name}"[:64]] += 1
        return web.json_response({"published": False, "event": event_name}, status=202)
    try:
        await gateway.publish([event])
    except BrokerUnavailable as exc:
        dedup.forget(delivery)  # let GitHub's retry in
        return json_error(503, "unavailable", f"broker unavailable: {exc}", headers={"Retry-After": "1"})
    stats.webhooks["published"] += 1
    return web.json_response({"ids": [event["id"]]}, status=202)
