"""Snapshot on subscribe (`subscribe.data.snapshot: true`) on the wire, memory broker.

`check_snapshot_exactly_once` is also run with two gateways on one Redis
(tests/redis/test_snapshot_gateways.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import aiohttp
import pytest

from autosdlc_ws.errors import BrokerUnavailable
from tests.conftest import PUBLISHER_KEY, READER_KEY, RunningGateway, make_token
from tests.integration.helpers import Client, agent_status, event, next_id, open_authed, open_ws, publish


async def subscribe_with_snapshot(client: Client, events: list[str],
                                  filters: dict[str, Any] | None = None) -> str:
    data: dict[str, Any] = {"events": events, "snapshot": True}
    if filters is not None:
        data["filters"] = filters
    reply = await client.request("subscribe", data)
    assert reply["type"] == "subscription_update" and reply["data"]["status"] == "active", reply
    sub_id: str = reply["data"]["subscriptionId"]
    return sub_id


def is_snapshot(msg: dict[str, Any]) -> bool:
    return (msg.get("metadata") or {}).get("snapshot") is True


async def test_snapshot_is_the_newest_per_type_and_resource_oldest_first_then_live(
        server: RunningGateway) -> None:
    await publish(server, [
        event("agent_status", "old-a1", agentId="a1", status="idle"), agent_status("a2", "a2"),
        event("system_notification", "n1", level="info", title="t", message="m"),
        agent_status("a1", "new-a1"),
        event("tdd_phase_change", "tdd", agentId="a1", taskId="t1", currentPhase="red"),
        event("workflow_started", "w1", workflowId="w1", name="build"),
    ])
    client = await open_authed(server)
    try:
        await subscribe_with_snapshot(client, ["agent_status", "system_notification", "tdd_phase_change"])
        snapshot = [await client.recv() for _ in range(4)]
        assert [m["id"] for m in snapshot] == ["a2", "n1", "new-a1", "tdd"]
        assert all(is_snapshot(m) for m in snapshot)
        assert snapshot[2]["data"] == {"agentId": "a1", "status": "busy"}
        await publish(server, agent_status("a1", "live"))
        live = await client.recv()
        assert live["id"] == "live" and not is_snapshot(live)
        await client.silent()
    finally:
        await client.close()


async def test_filters_choose_the_snapshot_and_an_empty_one_sends_nothing(server: RunningGateway) -> None:
    await publish(server, [agent_status("a1", "e1", workflowId="w1"), agent_status("a2", "e2"),
                           event("workflow_started", "w", workflowId="w1", name="build")])
    client = await open_authed(server)
    try:
        await subscribe_with_snapshot(client, ["agent_*", "workflow_*"], {"workflowId": "w1"})
        assert [m["id"] for m in [await client.recv(), await client.recv()]] == ["e1", "w"]
        await subscribe_with_snapshot(client, ["agent_status"], {"agentId": "nobody"})
        await client.silent()
    finally:
        await client.close()


async def test_without_the_flag_a_subscription_sends_no_snapshot(server: RunningGateway) -> None:
    await publish(server, agent_status("a1", "e1"))
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        await client.silent()
    finally:
        await client.close()


async def test_a_reader_sees_only_what_it_may_read(server: RunningGateway) -> None:
    await publish(server, [agent_status("a1", "mine"), agent_status("a2", "theirs"),
                           event("system_notification", "sys", level="info", title="t", message="m")])
    client = await open_authed(server, token=make_token("bob", ("read:agent:a1",)))
    try:
        await subscribe_with_snapshot(client, ["agent_status"], {"agentId": "a1"})
        assert (await client.recv())["id"] == "mine"
        refused = await client.request("subscribe", {"events": ["agent_status", "system_notification"],
                                                     "snapshot": True})
        assert refused["type"] == "error" and refused["data"]["code"] == "forbidden"
        await client.silent()
    finally:
        await client.close()
    keyed = await open_ws(server.ws_url)  # an API key with read:agent:* sees every agent, no system event
    try:
        await keyed.recv_type("connect")
        await keyed.send({"id": "auth", "type": "auth_request", "timestamp": 0, "data": {"apiKey": READER_KEY}})
        await keyed.recv_type("connect")
        await keyed.recv_type("auth_success")
        await subscribe_with_snapshot(keyed, ["agent_status"])
        assert [(await keyed.recv())["id"] for _ in range(2)] == ["mine", "theirs"]
        await keyed.silent()
    finally:
        await keyed.close()


async def test_a_snapshot_that_cannot_be_read_is_a_reset_and_live_events_still_come(
        server: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    async def unavailable(*_: Any) -> None:
        raise BrokerUnavailable("redis: connection refused")

    monkeypatch.setattr(server.gateway.backend.log, "snapshot", unavailable)
    client = await open_authed(server)
    try:
        sub_id = await subscribe_with_snapshot(client, ["agent_status"])
        reset = await client.recv_type("subscription_update")
        assert reset["data"]["subscriptionId"] == sub_id and reset["data"]["status"] == "reset"
        assert reset["data"]["reason"].startswith("snapshot unavailable")
        await publish(server, agent_status("a1", "live"))
        live = await client.recv()
        assert live["id"] == "live" and not is_snapshot(live)
    finally:
        await client.close()


async def test_snapshot_exactly_once_while_a_publisher_runs(server: RunningGateway) -> None:
    await check_snapshot_exactly_once(server, server)


async def check_snapshot_exactly_once(publish_to: RunningGateway, subscribe_to: RunningGateway) -> None:
    """A publisher keeps publishing status n of agent a<n % 7> over HTTP while a
    client subscribes with a snapshot. Then: each agent's n only grow (no
    duplicate, nothing older after newer), after an agent's first event every
    later one of it arrives (no gap), and each agent whose publish was answered
    before the subscribe was sent is in the snapshot at that n or later."""
    agents = 7
    answered: dict[int, int] = {}  # agent -> newest n whose publish was answered
    published: dict[int, list[int]] = defaultdict(list)
    stop = asyncio.Event()
    enough = asyncio.Event()

    async def publisher() -> None:
        async with aiohttp.ClientSession() as http:
            n = 0
            while not stop.is_set():
                batch = [n + i for i in range(3)]
                n += 3
                body = [agent_status(f"a{k % agents}", f"p{k}", n=k) for k in batch]
                resp = await http.post(f"{publish_to.http_url}/api/v1/events",
                                       headers={"X-API-Key": PUBLISHER_KEY}, json=body)
                assert resp.status == 202, await resp.text()
                for k in batch:
                    published[k % agents].append(k)
                    answered[k % agents] = k
                if n >= 60:
                    enough.set()

    task = asyncio.get_running_loop().create_task(publisher())
    client = await open_authed(subscribe_to)
    try:
        await asyncio.wait_for(enough.wait(), 10)
        answered_before = dict(answered)
        req_id = next_id("subscribe")
        await client.send({"id": req_id, "type": "subscribe", "timestamp": 0,
                           "data": {"events": ["agent_status"], "snapshot": True}})
        await asyncio.sleep(0.3)  # publishing goes on while the snapshot is read and sent
        stop.set()
        await task
        last = max(max(ns) for ns in published.values())
        frames = await client.until_event(f"p{last}", seconds=10)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task
        await client.close()
    assert frames[0]["type"] == "subscription_update" and frames[0]["metadata"]["correlationId"] == req_id
    events = frames[1:]
    flags = [is_snapshot(m) for m in events]
    assert flags == sorted(flags, reverse=True), "every snapshot event comes before the live ones"
    snapshot = {m["data"]["agentId"]: m["data"]["n"] for m in events if is_snapshot(m)}
    assert len(snapshot) == sum(flags), "one snapshot event per agent"
    for agent, n in answered_before.items():
        assert snapshot[f"a{agent}"] >= n, (agent, snapshot, answered_before)
    received: dict[str, list[int]] = defaultdict(list)
    for m in events:
        received[m["data"]["agentId"]].append(m["data"]["n"])
    assert any(not f for f in flags), "the test must see live events after the snapshot"
    for agent in range(agents):
        got = received[f"a{agent}"]
        assert got, agent
        expected = [n for n in published[agent] if n >= got[0]]
        assert got == expected, (agent, got, expected)  # increasing, no duplicate, no gap
