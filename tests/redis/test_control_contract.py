"""The `ControlChannel` contract, run against both implementations.

Each test gets a `kit` that starts nodes on the memory hub or on one Redis
(a private key prefix per test) and must pass unchanged on both: that is
what lets the admin view ignore which one it has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from autosdlc_ws.broker.control import CommandFailed, CommandHandler, ControlChannel, NodeInfo, NodeUnavailable
from autosdlc_ws.broker.memory_control import MemoryControlChannel, MemoryControlHub
from autosdlc_ws.broker.redis_control import RedisControlChannel
from tests.conftest import timeout
from tests.redis.conftest import RedisServer

HEARTBEAT_S = 0.1


def node(node_id: str) -> NodeInfo:
    now = int(time.time() * 1000)
    return NodeInfo(node_id=node_id, host="test-host", pid=4242, started_at_ms=now, last_seen_ms=now,
                    version="0.1.0")


async def echo(command: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"command": command, **args}


def answering(name: str) -> CommandHandler:
    async def handler(command: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"from": name, "command": command, "args": args}
    return handler


async def never_answers(command: str, args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


@dataclass
class ControlKit:
    kind: str
    server: RedisServer | None
    prefix: str
    url: str | None  # of the Redis server or cluster
    hub: MemoryControlHub = field(default_factory=MemoryControlHub)
    channels: list[ControlChannel] = field(default_factory=list)

    def channel(self, **options: Any) -> ControlChannel:
        if self.kind == "memory":
            return MemoryControlChannel(self.hub, heartbeat_s=HEARTBEAT_S, **options)
        assert self.url is not None
        return RedisControlChannel(self.url, prefix=self.prefix, heartbeat_s=HEARTBEAT_S,
                                   reconnect_min_s=0.02, reconnect_max_s=0.3, connect_timeout_s=0.5, **options)

    async def start(self, node_id: str, handler: CommandHandler = echo, **options: Any) -> ControlChannel:
        channel = self.channel(**options)
        await channel.start(node(node_id), handler)
        self.channels.append(channel)
        return channel


@pytest.fixture(params=["memory", "redis", "cluster"])
async def kit(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[ControlKit]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    url = server.url if server else request.getfixturevalue("redis_cluster").url \
        if request.param == "cluster" else None
    k = ControlKit(request.param, server, prefix, url)
    yield k
    for channel in k.channels:
        await channel.close()


async def eventually(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + timeout(seconds)
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_every_node_sees_every_registered_node(kit: ControlKit) -> None:
    a, b = await kit.start("node-a"), await kit.start("node-b")
    for channel in (a, b):
        listed = await channel.nodes()
        assert [n.node_id for n in listed] == ["node-a", "node-b"]
        assert listed[0].host == "test-host" and listed[0].pid == 4242 and listed[0].version == "0.1.0"
        assert all(abs(n.last_seen_ms - time.time() * 1000) < timeout(5000) for n in listed)
    assert a.node_id == "node-a" and a.reachable


async def test_updates_travel_with_the_next_heartbeat(kit: ControlKit) -> None:
    a, b = await kit.start("node-a"), await kit.start("node-b")
    a.update(5, {"queued_bytes": 10.0})

    async def b_sees_it() -> bool:
        entry = next(n for n in await b.nodes() if n.node_id == "node-a")
        return entry.connections == 5 and entry.gauges == {"queued_bytes": 10.0}

    await eventually(b_sees_it)


async def test_request_reaches_one_node_and_returns_its_answer(kit: ControlKit) -> None:
    a = await kit.start("node-a", answering("a"))
    await kit.start("node-b", answering("b"))
    assert await a.request("node-b", "admin.describe", {"connectionId": "c1"}) == {
        "from": "b", "command": "admin.describe", "args": {"connectionId": "c1"}}
    assert (await a.request("node-a", "x", {}))["from"] == "a"  # itself, without a round trip


async def test_request_to_an_unknown_node_fails_fast(kit: ControlKit) -> None:
    a = await kit.start("node-a")
    started = time.monotonic()
    with pytest.raises(NodeUnavailable) as raised:
        await a.request("node-zz", "ping", {}, timeout_s=timeout(3))
    assert raised.value.node_id == "node-zz"
    assert time.monotonic() - started < timeout(1)


async def test_request_to_a_node_that_does_not_answer_times_out(kit: ControlKit) -> None:
    a = await kit.start("node-a")
    await kit.start("node-b", never_answers)
    started = time.monotonic()
    with pytest.raises(NodeUnavailable, match="within"):
        await a.request("node-b", "ping", {}, timeout_s=0.3)
    assert 0.25 < time.monotonic() - started < timeout(1.5)


async def test_a_handler_that_raises_is_reported_as_a_failed_command(kit: ControlKit) -> None:
    async def broken(command: str, args: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(f"unknown admin command {command!r}")

    a = await kit.start("node-a")
    await kit.start("node-b", broken)
    with pytest.raises(CommandFailed, match="unknown admin command 'nope'"):
        await a.request("node-b", "nope", {})


async def test_broadcast_gathers_every_node_including_itself(kit: ControlKit) -> None:
    a = await kit.start("node-a", answering("a"))
    await kit.start("node-b", answering("b"))
    await kit.start("node-c", answering("c"))
    result = await a.broadcast("admin.errors", {"k": 1})
    assert not result.partial and result.missing == []
    assert {n: r["from"] for n, r in result.replies.items()} == {"node-a": "a", "node-b": "b", "node-c": "c"}
    assert result.replies["node-c"]["args"] == {"k": 1}


async def test_a_node_that_never_answers_makes_the_broadcast_partial_not_late(kit: ControlKit) -> None:
    a = await kit.start("node-a", answering("a"))
    await kit.start("node-b", never_answers)
    await kit.start("node-c", answering("c"))
    started = time.monotonic()
    result = await a.broadcast("admin.connections", {}, timeout_s=0.4)
    elapsed = time.monotonic() - started
    assert result.partial and result.missing == ["node-b"]
    assert sorted(result.replies) == ["node-a", "node-c"]
    assert elapsed < 0.4 + timeout(0.5)


async def test_leases_are_exclusive_and_renewable(kit: ControlKit) -> None:
    a, b = await kit.start("node-a"), await kit.start("node-b")
    assert await a.acquire_lease("alert:errors", 30)
    assert not await b.acquire_lease("alert:errors", 30)
    assert await a.acquire_lease("alert:errors", 30)  # renewal by the holder
    await b.release_lease("alert:errors")  # not b's: no effect
    assert not await b.acquire_lease("alert:errors", 30)
    await a.release_lease("alert:errors")
    assert await b.acquire_lease("alert:errors", 30)
    assert await a.acquire_lease("alert:other", 30)  # names are independent


async def test_a_lease_lapses_after_its_ttl(kit: ControlKit) -> None:
    a, b = await kit.start("node-a"), await kit.start("node-b")
    assert await a.acquire_lease("short", 0.2)
    assert not await b.acquire_lease("short", 0.2)
    if kit.kind == "memory":
        kit.hub.now_ms = lambda: int(time.time() * 1000) + 300
    else:
        await asyncio.sleep(0.3)
    assert await b.acquire_lease("short", 30)


async def test_close_deregisters_and_releases_leases(kit: ControlKit) -> None:
    a, b = await kit.start("node-a"), await kit.start("node-b")
    assert await b.acquire_lease("alert:x", 30)
    await b.close()
    assert [n.node_id for n in await a.nodes()] == ["node-a"]
    assert await a.acquire_lease("alert:x", 30)
    result = await a.broadcast("ping", {})
    assert list(result.replies) == ["node-a"] and not result.partial
