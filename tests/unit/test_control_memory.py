"""The control channel's pure rules, and the in-process channel with a fake clock.

What every implementation must do is in tests/redis/test_control_contract.py
(run on memory and Redis); here is what needs a clock under the test's hand:
liveness and lease expiry, without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from autosdlc_ws.broker.control import (
    ENTRY_TTL_S,
    HEARTBEAT_S,
    CommandFailed,
    NodeInfo,
    NodeUnavailable,
    collect_broadcast,
    is_alive,
    split_live,
    this_process,
)
from autosdlc_ws.broker.memory_control import MemoryControlChannel, MemoryControlHub
from tests.conftest import timeout

T0 = 1_700_000_000_000


def node(node_id: str, last_seen_ms: int = T0, **changes: Any) -> NodeInfo:
    return NodeInfo(node_id=node_id, host="h", pid=1, started_at_ms=T0, last_seen_ms=last_seen_ms,
                    version="0.1.0", **changes)


# --- pure rules -------------------------------------------------------------------------------


def test_an_entry_is_alive_while_younger_than_the_ttl() -> None:
    assert is_alive(T0, T0, 10_000)
    assert is_alive(T0, T0 + 9_999, 10_000)
    assert not is_alive(T0, T0 + 10_000, 10_000)


def test_split_live_sorts_the_live_and_names_the_dead() -> None:
    entries = [node("c", T0 + 5_000), node("a", T0 - 20_000), node("b", T0 + 2)]
    live, dead = split_live(entries, T0 + 10_001, 10_000)
    assert [n.node_id for n in live] == ["b", "c"]
    assert dead == ["a"]
    assert split_live(entries, T0 + 10_002, 10_000)[1] == ["a", "b"]  # exactly ttl old: dead


def test_collect_broadcast_names_the_nodes_that_did_not_answer() -> None:
    result = collect_broadcast(["b", "a", "c"], {"c": {"x": 1}, "a": {"x": 2}, "late": {"x": 3}})
    assert result.missing == ["b"]
    assert list(result.replies) == ["a", "c", "late"]
    assert result.partial
    complete = collect_broadcast(["a"], {"a": {}})
    assert not complete.partial and complete.missing == []
    assert collect_broadcast(["a"], {"a": {}}, reachable=False).partial


def test_node_info_json_is_the_contracts_camel_case_and_round_trips() -> None:
    info = node("n1", T0 + 7, connections=3, gauges={"memory_rss_bytes": 1.5e6})
    body = info.to_json()
    assert body == {"nodeId": "n1", "host": "h", "pid": 1, "startedAt": T0, "lastSeen": T0 + 7,
                    "connections": 3, "version": "0.1.0", "gauges": {"memory_rss_bytes": 1.5e6}}
    assert NodeInfo.from_json(body) == info
    seen = info.seen(T0 + 100, 4, {"q": 2.0})
    assert (seen.last_seen_ms, seen.connections, seen.gauges, seen.started_at_ms) == (T0 + 100, 4, {"q": 2.0}, T0)


def test_this_process_names_host_and_pid_and_ids_are_unique() -> None:
    a, b = this_process("1.2.3", T0), this_process("1.2.3", T0)
    assert a.pid == b.pid and a.host == b.host and a.version == "1.2.3"
    assert a.node_id != b.node_id and a.node_id.startswith(f"{a.host}:{a.pid}:")


def test_the_constants_keep_the_contracts_15_s_bound() -> None:
    # a killed node's last beat is at most ENTRY_TTL_S old when it is pruned
    assert ENTRY_TTL_S < 15 and HEARTBEAT_S * 3 <= ENTRY_TTL_S


# --- the memory channel on a fake clock ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hub(clock: Clock) -> AsyncIterator[MemoryControlHub]:
    hub = MemoryControlHub(now_ms=clock)
    yield hub


async def echo(command: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"command": command, **args}


async def started(hub: MemoryControlHub, node_id: str, handler: Any = echo) -> MemoryControlChannel:
    # a heartbeat loop that never fires during the test: the test beats by hand
    channel = MemoryControlChannel(hub, heartbeat_s=3600)
    await channel.start(node(node_id, hub.now_ms()), handler)
    return channel


async def test_a_node_that_stops_heartbeating_leaves_after_the_ttl(hub: MemoryControlHub, clock: Clock) -> None:
    a, b = await started(hub, "a"), await started(hub, "b")
    assert [n.node_id for n in await a.nodes()] == ["a", "b"]
    clock.ms += int(ENTRY_TTL_S * 1000) - 1
    await a.heartbeat()
    assert [n.node_id for n in await a.nodes()] == ["a", "b"]  # b: 1 ms short of the ttl
    clock.ms += 1
    assert [n.node_id for n in await a.nodes()] == ["a"]
    assert "b" not in hub.entries  # pruned on read
    with pytest.raises(NodeUnavailable):
        await a.request("b", "ping", {})
    await b.heartbeat()  # it was only paused: it comes back
    assert [n.node_id for n in await a.nodes()] == ["a", "b"]


async def test_the_heartbeat_carries_the_last_update(hub: MemoryControlHub, clock: Clock) -> None:
    a = await started(hub, "a")
    a.update(7, {"queued_bytes": 12.0})
    assert (await a.nodes())[0].connections == 0  # nothing written until the next beat
    clock.ms += 500
    await a.heartbeat()
    entry = (await a.nodes())[0]
    assert (entry.connections, entry.gauges, entry.last_seen_ms) == (7, {"queued_bytes": 12.0}, T0 + 500)


async def test_the_heartbeat_loop_rewrites_the_entry() -> None:
    hub = MemoryControlHub()
    channel = MemoryControlChannel(hub, heartbeat_s=0.01)
    await channel.start(node("a", hub.now_ms() - 5_000), echo)
    channel.update(2, {})
    deadline = time.monotonic() + timeout(5)
    while hub.entries["a"].connections != 2:
        assert time.monotonic() < deadline, "no heartbeat"
        await asyncio.sleep(0.01)
    await channel.close()


async def test_a_lease_is_held_until_released_or_expired(hub: MemoryControlHub, clock: Clock) -> None:
    a, b = await started(hub, "a"), await started(hub, "b")
    assert await a.acquire_lease("alert:x", 5)
    assert not await b.acquire_lease("alert:x", 5)
    clock.ms += 4_000
    assert await a.acquire_lease("alert:x", 5)  # renewal moves the expiry on
    clock.ms += 4_000
    assert not await b.acquire_lease("alert:x", 5)
    clock.ms += 1_000
    assert await b.acquire_lease("alert:x", 5)  # a's lease lapsed
    await a.release_lease("alert:x")  # not a's any more: left alone
    assert not await a.acquire_lease("alert:x", 5)
    await b.release_lease("alert:x")
    assert await a.acquire_lease("alert:x", 5)


async def test_close_deregisters_and_gives_up_leases(hub: MemoryControlHub) -> None:
    a, b = await started(hub, "a"), await started(hub, "b")
    assert await b.acquire_lease("l", 60)
    await b.close()
    assert [n.node_id for n in await a.nodes()] == ["a"]
    assert await a.acquire_lease("l", 60)


async def test_a_failing_handler_is_a_command_failure(hub: MemoryControlHub) -> None:
    async def broken(command: str, args: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("connectionId")

    a, _ = await started(hub, "a"), await started(hub, "b", broken)
    with pytest.raises(CommandFailed, match="KeyError"):
        await a.request("b", "admin.describe", {})
    result = await a.broadcast("admin.describe", {})
    assert result.missing == ["b"] and list(result.replies) == ["a"]
