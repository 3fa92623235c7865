"""Limits per identity across workers: connection caps (slots with a lease) and publish
rate limits (token buckets), kept in Redis; what happens to them while Redis is down.

Two gateways in this process share one private redis-server (as two workers or two
hosts would); one test kills a real `serve` process with -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.redis_limits import RedisSharedLimits
from tests.conftest import RunningGateway, base_settings, make_token, timeout
from tests.redis.conftest import RedisServer, make_redis_broker, wait_until
from tests.redis.helpers import WsClient, agent_event, connect, publish, wait_status
from tests.redis.test_workers import ServeProcess

Factory = Callable[..., Any]


async def start_pair(url: str, prefix: str, gateway_factory: Factory, *, lease: float = 30.0,
                     **settings: Any) -> tuple[RunningGateway, RunningGateway]:
    gateways = []
    for _ in range(2):
        broker = make_redis_broker(url, prefix, alert_after_s=0.2, slot_lease_s=lease)
        gateways.append(await gateway_factory(
            base_settings(connection_slot_lease_s=lease, **settings), backend=broker))
    return gateways[0], gateways[1]


async def try_connect(ws_url: str, token: str) -> WsClient | tuple[int, Any, dict[str, Any]]:
    """An authenticated client, or the refused upgrade's (status, headers, body)."""
    try:
        return await connect(ws_url, token=token)
    except InvalidStatus as exc:
        response = exc.response
        return response.status_code, response.headers, json.loads(response.body or b"{}")


async def refused_status(ws_url: str, token: str) -> int:
    outcome = await try_connect(ws_url, token)
    if isinstance(outcome, WsClient):
        await outcome.close()
        raise AssertionError("the connection was admitted")
    return outcome[0]


async def connect_when_admitted(ws_url: str, token: str, seconds: float) -> tuple[WsClient, float]:
    """Retry a refused (429) upgrade until it is admitted; the client and the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout(seconds)
    while True:
        outcome = await try_connect(ws_url, token)
        if isinstance(outcome, WsClient):
            return outcome, time.monotonic() - started
        assert outcome[0] == 429, outcome
        assert time.monotonic() < deadline, "never admitted"
        await asyncio.sleep(0.02)


async def post_as(http_url: str, token: str, events: list[dict[str, Any]]) -> int:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{http_url}/api/v1/events", json=events,
                               headers={"Authorization": f"Bearer {token}"})
        return resp.status


# --- connection caps -------------------------------------------------------------------------


async def test_the_connection_cap_of_an_identity_holds_across_gateways(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory, max_connections_per_identity=2)
    token = make_token("alice")
    first, second = await connect(g1.ws_url, token=token), await connect(g1.ws_url, token=token)
    clients = [first, second]
    try:
        # the third connection is refused on the OTHER gateway (and on this one)
        outcome = await try_connect(g2.ws_url, token)
        assert not isinstance(outcome, WsClient)
        status, headers, body = outcome
        assert status == 429 and body["error"]["code"] == "too_many_connections"
        assert headers.get("Retry-After") == "5"
        assert await refused_status(g1.ws_url, token) == 429
        # in-band authentication on the other gateway meets the same cap
        ws = await websockets.connect(g2.ws_url, open_timeout=timeout(5), max_queue=None)
        assert json.loads(await ws.recv())["type"] == "connect"
        await ws.send(json.dumps({"id": "cap", "type": "auth_request", "timestamp": 0,
                                  "data": {"token": token}}))
        failure = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
        assert failure["type"] == "auth_failure" and failure["data"]["code"] == "too_many_connections"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout(5))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        # another identity is not affected
        bob = await connect(g2.ws_url, token=make_token("bob"))
        await bob.close()
        # closing a connection on g1 frees a slot on g2
        await first.close()
        clients.remove(first)
        third, _ = await connect_when_admitted(g2.ws_url, token, 5)
        clients.append(third)
        assert await refused_status(g1.ws_url, token) == 429
        assert g1.gateway.per_identity == {"jwt:alice": 1} and g2.gateway.per_identity == {"jwt:alice": 1}
    finally:
        for client in clients:
            await client.close()


async def test_a_killed_workers_slots_free_themselves_after_the_lease(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    lease = 1.5  # renewed every 0.5 s
    worker = ServeProcess("--broker", redis_server.url, env={
        "AUTOSDLC_WS_REDIS_PREFIX": prefix, "AUTOSDLC_WS_CONNECTION_SLOT_LEASE_S": str(lease),
        "AUTOSDLC_WS_MAX_CONNECTIONS_PER_IDENTITY": "2"})
    clients: list[WsClient] = []
    try:
        await wait_status(f"{worker.http_url}/readyz", 200, 20)
        other = await gateway_factory(
            base_settings(max_connections_per_identity=2, connection_slot_lease_s=lease),
            backend=make_redis_broker(redis_server.url, prefix, slot_lease_s=lease))
        token = make_token("alice")
        clients = [await connect(worker.ws_url, token=token) for _ in range(2)]
        assert await refused_status(other.ws_url, token) == 429
        await asyncio.sleep(lease * 1.5)  # the live worker renews its leases: still full
        assert await refused_status(other.ws_url, token) == 429
        worker.proc.kill()  # kill -9: nothing is released
        worker.proc.wait(timeout(10))
        assert await refused_status(other.ws_url, token) == 429
        admitted, waited = await connect_when_admitted(other.ws_url, token, lease + 2)
        clients.append(admitted)
        # the last renewal was at most a third of a lease before the kill
        assert lease / 3 <= waited + 0.1 and waited <= lease + timeout(1.0), waited
        second, _ = await connect_when_admitted(other.ws_url, token, 1)
        clients.append(second)
        assert await refused_status(other.ws_url, token) == 429
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        worker.stop()


async def test_a_dead_brokers_slots_lapse_and_a_live_ones_are_renewed(
        redis_server: RedisServer, prefix: str, redis_brokers: list[Backend]) -> None:
    lease = 0.6
    a = make_redis_broker(redis_server.url, prefix, slot_lease_s=lease)
    b = make_redis_broker(redis_server.url, prefix, slot_lease_s=lease)
    redis_brokers.extend([a, b])
    for broker in (a, b):
        await broker.start(lambda _: None)
    assert await a.limits.acquire_slot("jwt:alice", "a1", 2) and await a.limits.acquire_slot("jwt:alice", "a2", 2)
    key = f"{prefix}slots:jwt:alice"
    assert 0 < pttl(redis_server, key) <= 600  # the key lives as long as its latest lease
    await asyncio.sleep(lease * 2.5)
    assert not await b.limits.acquire_slot("jwt:alice", "b1", 2)  # renewed all along
    await a.close()  # gone without releasing: no more renewals
    died = time.monotonic()
    while not await b.limits.acquire_slot("jwt:alice", "b1", 2):
        assert time.monotonic() - died < timeout(lease + 0.5), "the dead holders never lapsed"
        await asyncio.sleep(0.02)
    assert await b.limits.acquire_slot("jwt:alice", "b2", 2)
    assert not await b.limits.acquire_slot("jwt:alice", "b3", 2)
    await b.limits.release_slot("jwt:alice", "b1")
    await b.limits.release_slot("jwt:alice", "b2")
    assert redis_server.command("EXISTS", key) == b":0\r\n"  # no holder left, no key left


async def test_an_idle_bucket_leaves_no_key_behind(
        redis_server: RedisServer, prefix: str, redis_brokers: list[Backend]) -> None:
    broker = make_redis_broker(redis_server.url, prefix)
    redis_brokers.append(broker)
    await broker.start(lambda _: None)
    assert await broker.limits.take_tokens("rate:publish:jwt:alice", 10, 2) == 0  # full again 100 ms later
    key = f"{prefix}rate:publish:jwt:alice"
    assert 0 < pttl(redis_server, key) <= 1100
    await wait_until(lambda: redis_server.command("EXISTS", key) == b":0\r\n", 3, "the key to expire")


def pttl(server: RedisServer, key: str) -> int:
    return int(server.command("PTTL", key)[1:].strip())


# --- publish rate limits -------------------------------------------------------------------------


async def test_http_publishes_of_an_identity_share_one_bucket_across_gateways(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    # the HTTP limit is 5 x the per-connection publish rate: here 1 request/s, burst 5
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory,
                              rate_publish_per_s=0.2, rate_publish_burst=1)
    async with aiohttp.ClientSession() as http:
        statuses = [(await publish((g1, g2)[n % 2].http_url, [agent_event(n)], expect=0, session=http))[0]
                    for n in range(5)]
        assert statuses == [202] * 5  # the burst, spent on both gateways together
        for g in (g1, g2):
            status, body, retry_after = await publish(g.http_url, [agent_event(f"over-{g.port}")],
                                                      expect=0, session=http)
            assert status == 429 and body["error"]["code"] == "rate_limited", (status, body)
            assert retry_after is not None and int(retry_after) >= 1
        # another identity has a bucket of its own
        assert await post_as(g1.http_url, make_token("bob"), [agent_event("bob")]) == 202
        await asyncio.sleep(1.05)  # one token back, for either gateway
        assert (await publish(g2.http_url, [agent_event("later")], expect=0, session=http))[0] == 202
        assert (await publish(g1.http_url, [agent_event("later-2")], expect=0, session=http))[0] == 429


async def test_websocket_publishes_of_an_identity_share_one_bucket_across_gateways(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory,
                              rate_identity_publish_per_s=0.5, rate_identity_publish_burst=4)
    token = make_token("alice")
    c1, c2 = await connect(g1.ws_url, token=token), await connect(g2.ws_url, token=token)
    bob = await connect(g2.ws_url, token=make_token("bob"))
    try:
        await c1.subscribe(["agent_status"])
        for n in range(4):  # 2 + 2: the identity's burst, spent on two gateways
            await (c1, c2)[n % 2].ws.send(json.dumps(agent_event(n)))
        # (two gateways publish concurrently: the order between them is not defined)
        assert sorted(m["id"] for m in await c1.events(4)) == [f"r-{n}" for n in range(4)]
        for client, req in ((c2, "over-1"), (c1, "over-2")):
            reply = await client.request("agent_status", {"agentId": "a1", "status": "busy"}, req)
            assert reply["type"] == "error" and reply["data"]["code"] == "rate_limited", reply
            assert reply["data"]["retryAfterMs"] > 0
        # another identity has its own bucket; control messages are not charged
        await bob.ws.send(json.dumps(agent_event("bob")))
        assert [m["id"] for m in await c1.events(1)] == ["r-bob"]
        assert (await c2.request("ping", {}, "p"))["type"] == "pong"
    finally:
        for client in (c1, c2, bob):
            await client.close()


# --- Redis down ----------------------------------------------------------------------------------------


async def test_limits_while_redis_is_down_and_after_it_returns_empty(
        private_redis: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    """docs/deployment.md, "Limits across workers": both fail open to each worker's own view."""
    g1, g2 = await start_pair(private_redis.url, prefix, gateway_factory, lease=1.5,
                              max_connections_per_identity=2, rate_publish_per_s=0.02, rate_publish_burst=1)
    token = make_token("alice")
    clients = [await connect(g1.ws_url, token=token) for _ in range(2)]
    try:
        assert await refused_status(g2.ws_url, token) == 429
        async with aiohttp.ClientSession() as http:
            for n in range(5):
                await publish(g1.http_url, [agent_event(n)], session=http)
            assert (await publish(g2.http_url, [agent_event("x")], expect=0, session=http))[0] == 429

            private_redis.stop()
            await wait_status(f"{g1.http_url}/readyz", 503)
            await wait_status(f"{g2.http_url}/readyz", 503)
            # caps: each gateway counts its own connections. g1 holds two: refused ...
            assert await refused_status(g1.ws_url, token) == 429
            # ... g2 holds none: admitted past the cap, then closed 1013 like every new
            # session while Redis is away (sessions live in Redis)
            ws = await websockets.connect(f"{g2.ws_url}?token={token}", open_timeout=timeout(5))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout(5))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            # rate limits: a bucket of g1's own with the same rate and burst; the publishes
            # it lets through are refused for what they are (503), then it limits (429)
            statuses = [(await publish(g1.http_url, [agent_event(f"down-{n}")], expect=0, session=http))[0]
                        for n in range(6)]
            assert statuses == [503] * 5 + [429], statuses
            limits = g1.gateway.backend.limits
            assert isinstance(limits, RedisSharedLimits) and limits.limit_fallbacks >= 7

            private_redis.start()  # empty: every slot and bucket is gone
            await wait_status(f"{g1.http_url}/readyz", 200)
            await wait_status(f"{g2.http_url}/readyz", 200)
            # g1 writes its live holders back (at once on reconnecting, then at every renewal)
            await limits.refresh_slots()
            assert await refused_status(g2.ws_url, token) == 429
            assert private_redis.command("HLEN", f"{prefix}slots:jwt:alice") == b":2\r\n"
            # and the shared bucket starts full again
            assert (await publish(g2.http_url, [agent_event("back")], expect=0, session=http))[0] == 202
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
