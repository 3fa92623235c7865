"""Rate limits per message type (config `rate_limits`) across two gateways sharing
one redis-server, as two workers or two hosts would: one bucket per (type,
identity) for all of them, drawn from by WebSocket messages and HTTP publishes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.conftest import make_token
from tests.redis.conftest import RedisServer
from tests.redis.helpers import agent_event, connect, publish
from tests.redis.test_shared_limits import post_as, start_pair

Factory = Callable[..., Any]
LIMITS = {"subscribe": {"per_s": 0.1, "burst": 2}, "agent_status": {"per_s": 0.1, "burst": 3}}


async def test_a_request_type_limit_is_shared_by_the_gateways(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory, rate_limits=LIMITS)
    token = make_token("alice")
    c1, c2 = await connect(g1.ws_url, token=token), await connect(g2.ws_url, token=token)
    bob = await connect(g2.ws_url, token=make_token("bob"))
    try:
        await c1.subscribe(["agent_status"])
        await c2.subscribe(["agent_status"])  # the burst of 2, spent on two gateways
        for client, req in ((c1, "over-1"), (c2, "over-2")):
            reply = await client.request("subscribe", {"events": ["agent_log"]}, req)
            assert reply["type"] == "error" and reply["data"]["code"] == "rate_limited", reply
            assert reply["data"]["retryAfterMs"] > 0
        assert (await c2.request("ping", {}, "p"))["type"] == "pong"  # other types unaffected
        await bob.subscribe(["agent_status"])  # another identity has its own bucket
    finally:
        for client in (c1, c2, bob):
            await client.close()


async def test_an_event_type_limit_is_shared_by_http_on_both_gateways(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory, rate_limits=LIMITS)
    async with aiohttp.ClientSession() as http:
        assert (await publish(g1.http_url, [agent_event(1), agent_event(2)], expect=0, session=http))[0] == 202
        assert (await publish(g2.http_url, [agent_event(3)], expect=0, session=http))[0] == 202
        for g in (g1, g2):
            status, body, retry_after = await publish(g.http_url, [agent_event(f"over-{g.port}")],
                                                      expect=0, session=http)
            assert status == 429 and body["error"]["code"] == "rate_limited", (status, body)
            assert retry_after is not None and int(retry_after) >= 1
        workflow = {"type": "workflow_started", "data": {"workflowId": "w1", "name": "build"}}
        assert (await publish(g2.http_url, [workflow], expect=0, session=http))[0] == 202


async def test_websocket_and_http_publishes_of_an_identity_share_the_type_bucket(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory, rate_limits=LIMITS)
    token = make_token("alice")
    c1 = await connect(g1.ws_url, token=token)
    try:
        await c1.subscribe(["agent_status"])
        for n in range(2):
            await c1.ws.send(json.dumps(agent_event(n)))
        assert [m["id"] for m in await c1.events(2)] == ["r-0", "r-1"]
        assert await post_as(g2.http_url, token, [agent_event("http")]) == 202  # the third of the burst
        assert await post_as(g2.http_url, token, [agent_event("http-2")]) == 429  # on the other gateway
        reply = await c1.request("agent_status", {"agentId": "a1", "status": "busy"}, "ws-over")
        assert reply["type"] == "error" and reply["data"]["code"] == "rate_limited", reply
    finally:
        await c1.close()
