"""Two gateways (two "workers") in this process sharing one Redis: cross-worker delivery,
resume on the other worker, and a Redis outage seen from the wire (the admin API then
answers for the local node, partial)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway, base_settings, timeout
from tests.redis.conftest import RedisServer, make_redis_broker, wait_until
from tests.redis.helpers import agent_event, connect, publish, wait_status

Factory = Callable[..., Any]


async def start_pair(url: str, prefix: str, gateway_factory: Factory,
                     **settings: Any) -> tuple[RunningGateway, RunningGateway]:
    gateways = []
    for _ in range(2):
        broker = make_redis_broker(url, prefix, alert_after_s=0.2)
        gateways.append(await gateway_factory(base_settings(**settings), backend=broker))
    return gateways[0], gateways[1]


async def test_events_published_on_either_worker_reach_subscribers_on_both(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory)
    c1, c2 = await connect(g1.ws_url), await connect(g2.ws_url)
    try:
        await c1.subscribe(["agent_status"])
        await c2.subscribe(["agent_status"], {"agentId": "a1"})
        await publish(g1.http_url, [agent_event(i) for i in range(50)])
        await publish(g2.http_url, [agent_event("other", agent="a2")])
        await c2.ws.send(json.dumps(agent_event("ws")))  # a WebSocket publish on the other worker
        expected = [f"r-{i}" for i in range(50)]
        assert [m["id"] for m in await c1.events(52)] == [*expected, "r-other", "r-ws"]
        assert [m["id"] for m in await c2.events(51)] == [*expected, "r-ws"]
        for g in (g1, g2):
            async with aiohttp.ClientSession() as http:
                resp = await http.get(f"{g.http_url}/readyz")
                assert resp.status == 200 and (await resp.json())["broker"] == "redis"
    finally:
        await c1.close()
        await c2.close()


async def test_resume_on_the_other_worker_gets_all_10000_events_once_in_order(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    total, batch = 10_000, 500
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory)
    events = [agent_event(i) for i in range(total)]
    client = await connect(g1.ws_url)
    sub_id = await client.subscribe(["agent_status"])
    async with aiohttp.ClientSession() as http:
        for start in range(0, 3000, batch):  # phase 1: connected
            await publish(g2.http_url, events[start:start + batch], session=http)
        first = await client.events(2000)  # ... and it leaves mid-stream, 1000 frames unread
        await client.close()
        last_id = first[-1]["id"]
        assert last_id == "r-1999"
        for start in range(3000, 8000, batch):  # phase 2: away
            await publish(g1.http_url, events[start:start + batch], session=http)

        async def keep_publishing() -> None:  # phase 3: while it resumes on the other worker
            for start in range(8000, total, batch):
                await publish(g1.http_url, events[start:start + batch], session=http)
                await asyncio.sleep(0.01)

        publisher = asyncio.create_task(keep_publishing())
        resumed = await connect(g2.ws_url, query=f"session_id={client.session_id}&last_event_id={last_id}")
        try:
            assert resumed.connect["data"]["resumed"] is True
            assert resumed.session_id == client.session_id
            update = await resumed.recv()
            assert update["type"] == "subscription_update", update
            assert update["data"] == {**update["data"], "subscriptionId": sub_id, "status": "resumed"}
            rest = await resumed.events(total - 2000, seconds=30)
            await publisher
            ids = [m["id"] for m in first + rest]
            assert ids == [f"r-{i}" for i in range(total)]
            with pytest.raises(TimeoutError):  # and nothing twice afterwards
                await resumed.recv(0.3)
        finally:
            publisher.cancel()
            await resumed.close()


async def admin_answers_locally(gateway: RunningGateway, other_node: str) -> None:
    """While Redis is away the admin API answers at once for this node alone, partial,
    naming the node it cannot reach."""
    deadline = time.monotonic() + timeout(10)
    async with aiohttp.ClientSession() as http:
        while True:
            started = time.monotonic()
            resp = await http.get(f"{gateway.http_url}/api/v1/connections", headers={"X-API-Key": ADMIN_KEY})
            body = await resp.json()
            assert resp.status == 200 and time.monotonic() - started < 2.5, body
            if body.get("partial") and other_node in body["missingNodes"]:
                break
            assert time.monotonic() < deadline, f"admin answer never said partial: {body}"
            await asyncio.sleep(0.1)
        assert {c["nodeId"] for c in body["connections"]} == {gateway.gateway.node.node_id}
        resp = await http.get(f"{gateway.http_url}/api/v1/nodes", headers={"X-API-Key": ADMIN_KEY})
        nodes = await resp.json()
        assert [n["nodeId"] for n in nodes["nodes"]] == [gateway.gateway.node.node_id]
        assert nodes["partial"] is True and other_node in nodes["missingNodes"]


async def test_redis_outage_seen_from_the_wire(persistent_redis: RedisServer, prefix: str,
                                               gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(persistent_redis.url, prefix, gateway_factory)
    sub = await connect(g1.ws_url)
    ws_publisher = await connect(g2.ws_url)
    await sub.subscribe(["agent_status", "system_alert"])
    accepted: list[str] = []
    refused: list[str] = []
    phase = {"name": "before"}
    stop = asyncio.Event()

    async def publisher() -> None:
        n = 0
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                target = (g1, g2)[n % 2]
                batch = [agent_event(f"{phase['name']}-{n}-{k}") for k in range(5)]
                status, body, retry_after = await publish(target.http_url, batch, expect=0, session=http)
                ids = [e["id"] for e in batch]
                if status == 202:
                    accepted.extend(ids)
                else:
                    assert status == 503 and retry_after and body["error"]["code"], (status, body)
                    refused.extend(ids)
                n += 1
                await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as http:  # both nodes listed (and known to g1) before the outage
        resp = await http.get(f"{g1.http_url}/api/v1/nodes", headers={"X-API-Key": ADMIN_KEY})
        assert (await resp.json())["count"] == 2
    task = asyncio.create_task(publisher())
    try:
        await asyncio.sleep(0.3)
        persistent_redis.stop()
        phase["name"] = "during"
        await wait_status(f"{g1.http_url}/readyz", 503)
        await wait_status(f"{g2.http_url}/readyz", 503)
        await ws_publisher.ws.send(json.dumps(agent_event("ws-during")))
        while True:
            error = await ws_publisher.recv()
            if error["type"] == "error":
                break
        assert error["data"]["code"] == "internal" and error["data"]["retryAfterMs"] > 0
        await admin_answers_locally(g1, g2.gateway.node.node_id)
        # (a publish in flight when Redis stopped may take the whole retry time to fail:
        # wait for one begun during the outage to be refused, not for a fixed time)
        await wait_until(lambda: any(i.startswith("r-during") for i in refused), 10,
                         "a publish refused during the outage")
        await asyncio.sleep(0.1)
        persistent_redis.start()
        phase["name"] = "after"
        await wait_status(f"{g1.http_url}/readyz", 200)
        await wait_status(f"{g2.http_url}/readyz", 200)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await task
    assert accepted and any(i.startswith("r-during") for i in refused)
    assert any(i.startswith("r-after") for i in accepted)
    want = set(accepted)
    got: list[str] = []
    alerts: list[dict[str, Any]] = []
    while not want.issubset(got):
        msg = await sub.recv(5)
        if msg["type"] == "system_alert":
            alerts.append(msg["data"])
        elif msg["type"] == "agent_status":
            got.append(msg["id"])
    assert len(got) == len(set(got)), "an event was delivered twice"
    # a refused publish whose reply was lost may still be in the log; anything else is an error
    assert set(got) - want <= set(refused)
    assert [i for i in got if i in want] == accepted  # in publish order
    assert [(a["severity"], a["resolved"]) for a in alerts] == [("critical", False), ("info", True)]
    await sub.close()
    await ws_publisher.close()



async def test_the_old_socket_of_a_session_resumed_elsewhere_cannot_overwrite_it(
        redis_server: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    """The client reconnected to the other worker before the first saw its socket
    close, and subscribed to more there. The first worker's last save of the
    session (on that close) used to land over it: the next resume restored the
    old subscriptions and the client had to re-subscribe, missing events."""
    g1, g2 = await start_pair(redis_server.url, prefix, gateway_factory)
    old = await connect(g1.ws_url)
    await old.subscribe(["agent_status"])
    new = await connect(g2.ws_url, query=f"session_id={old.session_id}")
    try:
        assert new.connect["data"]["resumed"] is True
        assert (await new.recv())["data"]["status"] == "resumed"
        await new.subscribe(["agent_log"])
        sessions = g2.gateway.backend.sessions
        for _ in range(200):  # its save has landed
            saved = await sessions.load(new.session_id)
            if saved is not None and len(saved.subscriptions) == 2:
                break
            await asyncio.sleep(0.01)
        # the old socket is still open on g1: its save after a change (and its last one
        # as it closes) is refused by the record, and g1 closes it as stale
        late = await old.request("subscribe", {"events": ["workflow_started"], "filters": {}}, "sub-late")
        assert late["data"]["status"] == "active", late
        await wait_until(lambda: not g1.gateway.connections, 5, "g1 closing the stale socket")
        record = await sessions.load(new.session_id)
        assert record is not None and record.owner == new.connection_id
        assert sorted(s["events"][0] for s in record.subscriptions) == ["agent_log", "agent_status"]
    finally:
        await old.close()
        await new.close()


async def test_sessions_redis_forgot_are_written_again_by_their_live_connections(
        private_redis: RedisServer, prefix: str, gateway_factory: Factory) -> None:
    """Redis restarted without its data forgets the sessions with the history. The
    live connections still know theirs and write them again: a client whose worker
    dies afterwards resumes its session (the reset of the history was announced)
    instead of starting afresh and missing what came meanwhile."""
    broker = make_redis_broker(private_redis.url, prefix, alert_after_s=0.2)
    gateway = await gateway_factory(base_settings(), backend=broker)
    client = await connect(gateway.ws_url)
    try:
        await client.subscribe(["agent_status"])
        sessions = gateway.gateway.backend.sessions
        await wait_until(lambda: not gateway.gateway.sessions.saves, 5, "the subscribe's save")
        assert await sessions.load(client.session_id) is not None
        private_redis.stop()
        await wait_until(lambda: not broker.log.available, 5, "the outage noticed")
        private_redis.start()
        while True:  # the live subscription is told its history is gone
            msg = await client.recv(10)
            if msg["type"] == "subscription_update" and msg["data"]["status"] == "reset":
                break
        record = None
        for _ in range(500):
            record = await sessions.load(client.session_id)
            if record is not None:
                break
            await asyncio.sleep(0.01)
        assert record is not None, "the session was not written again"
        assert [s["events"] for s in record.subscriptions] == [["agent_status"]]
        assert record.owner == client.connection_id
    finally:
        await client.close()
