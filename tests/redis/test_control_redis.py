"""What only the Redis control channel can show: nodes in other processes, a
node killed by SIGKILL, and a Redis that goes away and comes back empty."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from autosdlc_ws.broker.control import ENTRY_TTL_S, NodeInfo, NodeUnavailable
from autosdlc_ws.broker.redis_control import RedisControlChannel
from autosdlc_ws.server import admin_view
from autosdlc_ws.server.admin_view import UnknownConnection, register_commands
from tests.conftest import REPO, timeout
from tests.redis.conftest import RedisServer
from tests.unit.test_admin_view import FakeLocalAdmin, conn

#: The contract: a process that stops, even by SIGKILL, leaves the node list within 15 s.
LEAVES_WITHIN_S = 15.0


def node(node_id: str) -> NodeInfo:
    now = int(time.time() * 1000)
    return NodeInfo(node_id, "test-host", os.getpid(), now, now, "0.1.0")


async def echo(command: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"command": command}


@pytest.fixture
async def channels() -> AsyncIterator[list[RedisControlChannel]]:
    made: list[RedisControlChannel] = []
    yield made
    for channel in made:
        await channel.close()


async def wait_for(predicate: Callable[[], Any], seconds: float, what: str) -> float:
    """Seconds until `await predicate()` (or `predicate()`) is true."""
    started = time.monotonic()
    while True:
        outcome = predicate()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return time.monotonic() - started
        if time.monotonic() - started > timeout(seconds):
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_node_killed_by_sigkill_leaves_the_list_within_15_s(
        redis_server: RedisServer, prefix: str, channels: list[RedisControlChannel]) -> None:
    here = RedisControlChannel(redis_server.url, prefix=prefix)  # the default heartbeat and ttl
    channels.append(here)
    await here.start(node("here"), echo)
    proc = subprocess.Popen([sys.executable, "-m", "tests.redis.control_node", redis_server.url, prefix, "there"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout(20))
        assert line.strip() == "ready"
        assert [n.node_id for n in await here.nodes()] == ["here", "there"]
        answer = await here.request("there", "admin.errors", {})
        assert answer == {"pid": proc.pid, "command": "admin.errors"}
        assert sorted((await here.broadcast("ping", {})).replies) == ["here", "there"]

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout(10))
        killed_at = time.monotonic()
        # Until its entry expires the dead node is listed but cannot answer: partial, not a hang.
        assert [n.node_id for n in await here.nodes()] == ["here", "there"]
        result = await here.broadcast("ping", {}, timeout_s=0.3)
        assert result.missing == ["there"] and list(result.replies) == ["here"]
        with pytest.raises(NodeUnavailable):
            await here.request("there", "ping", {}, timeout_s=0.3)

        async def gone() -> bool:
            return [n.node_id for n in await here.nodes()] == ["here"]

        await wait_for(gone, LEAVES_WITHIN_S + 5, "the killed node to leave")
        left_after = time.monotonic() - killed_at
        assert left_after <= LEAVES_WITHIN_S, f"left after {left_after:.1f} s"
        assert left_after <= ENTRY_TTL_S + 1
        redis_key = f"{prefix}nodes"
        assert b"there" not in redis_server.command("HKEYS", redis_key)  # pruned, not just hidden
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_redis_outage_answers_locally_then_nodes_re_register(
        private_redis: RedisServer, prefix: str, channels: list[RedisControlChannel]) -> None:
    def make() -> RedisControlChannel:
        channel = RedisControlChannel(private_redis.url, prefix=prefix, heartbeat_s=0.2, connect_timeout_s=0.3,
                                      command_timeout_s=0.5, reconnect_min_s=0.02, reconnect_max_s=0.2)
        channels.append(channel)
        return channel

    a, b = make(), make()
    await a.start(node("node-a"), echo)
    await b.start(node("node-b"), echo)
    assert [n.node_id for n in await a.nodes()] == ["node-a", "node-b"]

    private_redis.stop(kill=True)
    await wait_for(lambda: not a.reachable, 5, "node-a to notice the outage")
    started = time.monotonic()
    listed = await a.nodes()
    result = await a.broadcast("admin.connections", {}, timeout_s=1.0)
    assert time.monotonic() - started < timeout(1.5)
    assert [n.node_id for n in listed] == ["node-a"]
    assert list(result.replies) == ["node-a"] and result.missing == ["node-b"]
    assert result.partial and not result.reachable
    assert a.unreachable_peers() == ["node-b"]
    nodes_body = await admin_view.list_nodes(a)
    assert [n["nodeId"] for n in nodes_body["nodes"]] == ["node-a"] and nodes_body["count"] == 1
    assert nodes_body["partial"] is True and nodes_body["missingNodes"] == ["node-b"]
    with pytest.raises(NodeUnavailable, match="cannot reach redis"):
        await a.request("node-b", "ping", {})
    assert (await a.request("node-a", "ping", {})) == {"command": "ping"}  # itself: still answers
    assert await a.acquire_lease("alert:broker", 10)  # fails open: a acts alone

    private_redis.start()  # same port, no data: both nodes must register again
    await wait_for(lambda: a.reachable and b.reachable, 10, "both nodes to reconnect")

    async def both_listed() -> bool:
        return [n.node_id for n in await b.nodes()] == ["node-a", "node-b"]

    await wait_for(both_listed, 5, "both nodes re-registered")
    assert a.reconnects >= 1 and a.unreachable_peers() == []
    result = await b.broadcast("ping", {})
    assert not result.partial and sorted(result.replies) == ["node-a", "node-b"]
    assert await a.request("node-b", "ping", {}) == {"command": "ping"}


async def test_a_node_started_while_redis_is_down_joins_when_it_returns(
        private_redis: RedisServer, prefix: str, channels: list[RedisControlChannel]) -> None:
    private_redis.stop(kill=True)
    late = RedisControlChannel(private_redis.url, prefix=prefix, heartbeat_s=0.2, connect_timeout_s=0.2,
                               command_timeout_s=0.3, reconnect_min_s=0.02, reconnect_max_s=0.2)
    channels.append(late)
    await late.start(node("late"), echo)  # does not raise: serves locally meanwhile
    assert not late.reachable
    assert [n.node_id for n in await late.nodes()] == ["late"]
    private_redis.start()
    await wait_for(lambda: late.reachable, 10, "the late node to connect")
    assert private_redis.command("HKEYS", f"{prefix}nodes").count(b"late") == 1


async def test_the_admin_view_works_across_nodes_as_json(
        redis_server: RedisServer, prefix: str, channels: list[RedisControlChannel]) -> None:
    """Answers travel as JSON between nodes: the merged bodies must survive the trip."""
    a_admin = FakeLocalAdmin(conns=[conn("c1", "alice", 20)], resources={"agent:a1": 1}, types={"agent_status": 1})
    b_admin = FakeLocalAdmin(conns=[conn("c2", "bob", 10)], resources={"agent:a1": 2}, types={"agent_status": 2})
    for node_id, admin in (("node-a", a_admin), ("node-b", b_admin)):
        channel = RedisControlChannel(redis_server.url, prefix=prefix, connect_timeout_s=0.5)
        channels.append(channel)
        await channel.start(node(node_id), register_commands(admin))
    a = channels[0]
    listed = await admin_view.list_connections(a)
    assert [(c["connectionId"], c["nodeId"]) for c in listed["connections"]] == [("c2", "node-b"), ("c1", "node-a")]
    assert await admin_view.subscription_counts(a) == {
        "resources": [{"resource": "agent:a1", "subscribers": 3}],
        "types": [{"type": "agent_status", "subscribers": 3}]}
    assert await admin_view.close_connection(a, "c2", "root") == {"closed": "c2"}
    assert b_admin.closed == [("c2", "root")]
    with pytest.raises(UnknownConnection):
        await admin_view.find_connection(a, "c2")
    await admin_view.set_logging(a, {"enabled": True})
    assert b_admin.log_config.enabled
