"""Two gateways on a real local Redis Cluster (3 masters): delivery exactly once and in
order per resource, exact resume across gateways over several partitions, and the
faults of CONTRACT §12 (a master killed and restarted; a failover to a replica)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.crc import key_slot

from autosdlc_ws.broker.partitioned_log import PartitionedEventLog
from autosdlc_ws.core.partitions import partition_of
from autosdlc_ws.errors import BrokerUnavailable
from tests.conftest import RunningGateway, base_settings, timeout
from tests.redis.cluster import LocalCluster
from tests.redis.conftest import TEST_PARTITIONS, make_cluster_broker, wait_until
from tests.redis.helpers import WsClient, agent_event, connect, publish

Factory = Callable[..., Any]
AGENTS = [f"a{i}" for i in range(12)]  # over every partition of the test cluster


async def start_pair(url: str, prefix: str, gateway_factory: Factory,
                     **settings: Any) -> tuple[RunningGateway, RunningGateway]:
    gateways = []
    for _ in range(2):
        broker = make_cluster_broker(url, prefix, alert_after_s=0.2, readers="needed")
        gateways.append(await gateway_factory(base_settings(**settings), backend=broker))
    return gateways[0], gateways[1]


def spread_events(count: int, prefix: str = "c") -> list[dict[str, Any]]:
    """`count` events round-robin over AGENTS, each carrying its per-agent sequence number."""
    return [{"id": f"{prefix}-{i}", "type": "agent_status", "timestamp": 1_700_000_000_000 + i,
             "data": {"agentId": AGENTS[i % len(AGENTS)], "status": "busy", "n": i // len(AGENTS)}}
            for i in range(count)]


def check_once_in_order_per_agent(received: list[dict[str, Any]], published: list[dict[str, Any]]) -> None:
    ids = [m["id"] for m in received]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == {e["id"] for e in published}, "an event is missing"
    for agent in AGENTS:
        seq = [m["data"]["n"] for m in received if m["data"]["agentId"] == agent]
        assert seq == sorted(seq), f"events of {agent} out of order"


async def read_events(client: WsClient, count: int, seconds: float = 15.0) -> list[dict[str, Any]]:
    return await client.events(count, seconds)


def test_the_test_agents_cover_every_partition() -> None:
    assert {partition_of("agent_status", {"agentId": a}, TEST_PARTITIONS) for a in AGENTS} == \
        set(range(TEST_PARTITIONS))


async def test_two_gateways_deliver_once_and_in_order_per_resource(
        redis_cluster: LocalCluster, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_cluster.url, prefix, gateway_factory)
    c1, c2 = await connect(g1.ws_url), await connect(g2.ws_url)
    try:
        await c1.subscribe(["agent_status"])
        await c2.subscribe(["agent_status"], {"agentId": ["a1", "a2"]})
        events = spread_events(600)
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(publish((g1, g2)[k % 2].http_url, events[k::6], session=http)
                                   for k in range(6)))  # six publishers at once, through both gateways
        check_once_in_order_per_agent(await read_events(c1, 600), events)
        mine = [e for e in events if e["data"]["agentId"] in ("a1", "a2")]
        got = await read_events(c2, len(mine))
        assert sorted(m["id"] for m in got) == sorted(e["id"] for e in mine)
        for g in (g1, g2):
            async with aiohttp.ClientSession() as http:
                resp = await http.get(f"{g.http_url}/readyz")
                assert resp.status == 200 and (await resp.json())["broker"] == "redis-cluster"
    finally:
        await c1.close()
        await c2.close()


async def test_resume_on_the_other_gateway_is_exact_over_every_partition(
        redis_cluster: LocalCluster, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(redis_cluster.url, prefix, gateway_factory)
    events = spread_events(3000)
    client = await connect(g1.ws_url)
    await client.subscribe(["agent_status"])
    async with aiohttp.ClientSession() as http:
        await publish(g2.http_url, events[:1000], session=http)
        first = await read_events(client, 700)  # ... and it leaves with 300 frames unread
        await client.close()
        await publish(g1.http_url, events[1000:2000], session=http)  # while it is away

        async def keep_publishing() -> None:  # while it resumes on the other gateway
            for start in range(2000, 3000, 100):
                await publish(g1.http_url, events[start:start + 100], session=http)
                await asyncio.sleep(0.01)

        publisher = asyncio.create_task(keep_publishing())
        resumed = await connect(g2.ws_url, query=f"session_id={client.session_id}&last_event_id={first[-1]['id']}")
        try:
            assert resumed.connect["data"]["resumed"] is True
            rest = await read_events(resumed, 2300, seconds=30)
            await publisher
            extra = await _drain(resumed, "agent_status", 0.5)
            assert not [m for m in extra if m["type"] == "subscription_update"], extra
            check_once_in_order_per_agent(first + rest + extra, events)
        finally:
            await resumed.close()


def resets(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in frames if m["type"] == "subscription_update" and m["data"]["status"] == "reset"]


async def _drain(client: WsClient, type_: str, quiet_s: float) -> list[dict[str, Any]]:
    """Frames still coming (of `type_` or subscription updates) until `quiet_s` of silence."""
    got: list[dict[str, Any]] = []
    while True:
        try:
            msg = await client.recv(quiet_s)
        except TimeoutError:
            return got
        if msg["type"] in (type_, "subscription_update"):
            got.append(msg)


# --- faults: each test has a cluster of its own ---------------------------------------------


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster") as cluster:
        yield cluster


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster", replicas=True) as cluster:
        yield cluster


def partition_keys_node(cluster: LocalCluster, gateway: RunningGateway, partition: int) -> Any:
    log = gateway.gateway.backend.log
    return cluster.master_of(log.logs[partition].link.log_keys[0])  # type: ignore[attr-defined]


async def test_a_master_killed_and_restarted_empty_resets_only_what_it_held(
        own_cluster: LocalCluster, prefix: str, gateway_factory: Factory) -> None:
    g1, g2 = await start_pair(own_cluster.url, prefix, gateway_factory)
    victim = partition_keys_node(own_cluster, g1, 0)
    lost = {p for p in range(TEST_PARTITIONS) if partition_keys_node(own_cluster, g1, p) is victim}
    kept = set(range(TEST_PARTITIONS)) - lost
    assert lost and kept, "the test needs partitions on the victim and elsewhere"
    on_lost = next(a for a in AGENTS if partition_of("agent_status", {"agentId": a}, TEST_PARTITIONS) in lost)
    on_kept = next(a for a in AGENTS if partition_of("agent_status", {"agentId": a}, TEST_PARTITIONS) in kept)
    watch_lost, watch_kept = await connect(g2.ws_url), await connect(g2.ws_url)
    try:
        await watch_lost.subscribe(["agent_status"], {"agentId": [on_lost]})
        await watch_kept.subscribe(["agent_status"], {"agentId": [on_kept]})
        await publish(g1.http_url, [agent_event(i, agent=on_lost, prefix="l") for i in range(5)]
                      + [agent_event(i, agent=on_kept, prefix="k") for i in range(5)])
        assert len(await watch_lost.events(5)) == 5 and len(await watch_kept.events(5)) == 5

        victim.stop(kill=True)  # SIGKILL, no persistence: it comes back empty
        await asyncio.sleep(0.5)
        victim.start()
        own_cluster.wait_ok()
        await _publish_until_accepted(g1, [agent_event(i, agent=on_lost, prefix="l2") for i in range(3)]
                                      + [agent_event(i, agent=on_kept, prefix="k2") for i in range(3)])
        lost_frames = await _drain(watch_lost, "agent_status", 2.0)
        kept_frames = await _drain(watch_kept, "agent_status", 1.0)
        resets = [m for m in lost_frames if m["type"] == "subscription_update"]
        assert resets and resets[0]["data"]["status"] == "reset", lost_frames
        assert [m["id"] for m in lost_frames if m["type"] == "agent_status"] == ["l2-0", "l2-1", "l2-2"]
        # the partition that kept its log: no reset, nothing lost, nothing twice
        assert not [m for m in kept_frames if m["type"] == "subscription_update"], kept_frames
        assert [m["id"] for m in kept_frames] == ["k2-0", "k2-1", "k2-2"]
    finally:
        await watch_lost.close()
        await watch_kept.close()


async def _publish_until_accepted(gateway: RunningGateway, events: list[dict[str, Any]],
                                  seconds: float = 20.0) -> None:
    deadline = time.monotonic() + timeout(seconds)
    while True:
        status, body, _ = await publish(gateway.http_url, events, expect=0)
        if status == 202:
            return
        assert status == 503, body  # refused whole while a node is away
        assert time.monotonic() < deadline, "publishes never accepted again"
        await asyncio.sleep(0.2)


def _repl_offset(node: Any, field: str) -> int:
    for line in node.command("INFO", "replication").decode(errors="replace").splitlines():
        if line.startswith(field + ":"):
            return int(line.partition(":")[2])
    return -1


async def test_a_failover_to_the_replica_keeps_delivery_and_resume_gapless(
        replicated_cluster: LocalCluster, prefix: str, gateway_factory: Factory) -> None:
    cluster = replicated_cluster
    g1, g2 = await start_pair(cluster.url, prefix, gateway_factory)
    victim = partition_keys_node(cluster, g1, 0)
    replica = cluster.replica_of(victim)
    client = await connect(g2.ws_url)
    await client.subscribe(["agent_status"])
    events = spread_events(240, prefix="f")
    try:
        await publish(g1.http_url, events[:120])
        first = await read_events(client, 120)
        # the replica has every write before the master dies (replication is asynchronous:
        # a failover that loses writes starts a new epoch, test_broker_faults covers that)
        await wait_until(lambda: _repl_offset(victim, "master_repl_offset") ==
                         _repl_offset(replica, "master_repl_offset") > 0, 10, "replica caught up")
        victim.stop(kill=True)
        await wait_until(lambda: replica.role() == "master", 20, "replica promoted")
        cluster.wait_ok()
        for start in range(120, 240, 40):
            await _publish_until_accepted(g1, events[start:start + 40])
        rest = await _drain(client, "agent_status", 3.0)
        assert not resets(rest), rest
        check_once_in_order_per_agent(first + rest, events)
        # and a session resumes across the failover, on the other gateway, from the last
        # event before it (the connection's send order was saved when it closed)
        await client.close()
        await asyncio.sleep(0.3)
        resumed = await connect(g1.ws_url, query=f"session_id={client.session_id}&last_event_id={first[-1]['id']}")
        try:
            assert resumed.connect["data"]["resumed"] is True
            replay = await _drain(resumed, "agent_status", 2.0)
            assert not resets(replay), replay
            check_once_in_order_per_agent(first + [m for m in replay if m["type"] == "agent_status"], events)
        finally:
            await resumed.close()
    finally:
        await client.close()


async def test_a_partition_slot_migrated_while_publishing_loses_and_repeats_nothing(
        own_cluster: LocalCluster, prefix: str) -> None:
    """MOVED/ASK/TRYAGAIN for the publisher, a `sunsubscribe` for the reader: both follow
    the slot to its new master; the reader fills from the stream what it missed."""
    publisher = make_cluster_broker(own_cluster.url, prefix)
    reader = make_cluster_broker(own_cluster.url, prefix)
    got: list[Any] = []
    await publisher.start(lambda record: None)
    await reader.start(got.append)
    try:
        log = publisher.log
        partition = partition_of("agent_status", {"agentId": "a1"}, TEST_PARTITIONS)
        key = log.logs[partition].link.log_keys[0]  # type: ignore[attr-defined]
        slot = key_slot(key.encode())
        source = own_cluster.master_of(key)
        dest = next(n for n in own_cluster.nodes if n is not source)
        accepted: list[str] = []
        stop = asyncio.Event()

        async def keep_publishing() -> None:
            n = 0
            while not stop.is_set():
                batch = [agent_event(n + i, agent="a1", prefix="m") for i in range(5)]
                try:
                    await log.publish(batch)
                except BrokerUnavailable:
                    await asyncio.sleep(0.05)
                    continue  # refused whole: the same ids again (idempotent)
                accepted.extend(e["id"] for e in batch)
                n += 5
                await asyncio.sleep(0.005)

        task = asyncio.create_task(keep_publishing())
        await wait_until(lambda: len(accepted) >= 50, 10, "publishing")
        moved = await asyncio.to_thread(own_cluster.move_slot, slot, dest)
        assert own_cluster.master_of(key) is dest
        target = len(accepted) + 50
        await wait_until(lambda: len(accepted) >= target, 20, "publishing on the new master")
        stop.set()
        await task
        await wait_until(lambda: len([r for r in got if r.partition == partition]) >= len(accepted), 10,
                         "every accepted event delivered")
        mine = [r for r in got if r.partition == partition]
        assert moved > 0
        assert [r.event["id"] for r in mine] == accepted
        assert [r.offset for r in mine] == list(range(1, len(accepted) + 1))
        assert reader.log.reconnects >= 1  # type: ignore[attr-defined]
    finally:
        await publisher.close()
        await reader.close()


async def test_a_session_taken_over_on_the_same_gateway_resumes_exactly(
        redis_cluster: LocalCluster, prefix: str, gateway_factory: Factory) -> None:
    """The client reconnects before the server noticed its old socket died: the old
    connection's send order is still in memory, so the resume is exact, not 'duplicates'."""
    g1, _ = await start_pair(redis_cluster.url, prefix, gateway_factory)
    events = spread_events(600, prefix="t")
    old = await connect(g1.ws_url)
    await old.subscribe(["agent_status"])
    await publish(g1.http_url, events)
    first = await read_events(old, 300)
    new = await connect(g1.ws_url, query=f"session_id={old.session_id}&last_event_id={first[-1]['id']}")
    try:
        assert new.connect["data"]["resumed"] is True
        rest = [m for m in await _drain(new, "agent_status", 1.5) if m["type"] == "agent_status"]
        check_once_in_order_per_agent(first + rest, events)
    finally:
        await new.close()
        await old.close()


async def test_a_worker_reads_only_the_partitions_its_subscriptions_need(
        redis_cluster: LocalCluster, prefix: str, gateway_factory: Factory) -> None:
    broker = make_cluster_broker(redis_cluster.url, prefix, readers="needed", linger_s=0.3)
    gateway = await gateway_factory(base_settings(), backend=broker)
    log = broker.log
    assert isinstance(log, PartitionedEventLog) and log.reading == []
    a1 = partition_of("agent_status", {"agentId": "a1"}, TEST_PARTITIONS)
    other = next(a for a in AGENTS if partition_of("agent_status", {"agentId": a}, TEST_PARTITIONS) != a1)
    narrow = await connect(gateway.ws_url)
    try:
        await narrow.subscribe(["agent_status"], {"agentId": ["a1"]})
        assert log.reading == [a1]
        seen: list[int] = []
        original = gateway.gateway.hub.on_broker_event

        def counting(record: Any) -> None:  # what reaches this worker's hub, by partition
            seen.append(record.partition)
            original(record)

        log._handler = counting  # the handler partitions get when they start
        log.logs[a1]._handler = counting
        await publish(gateway.http_url, [agent_event(1, agent=other), agent_event(2, agent="a1")])
        assert [m["id"] for m in await narrow.events(1)] == ["r-2"]
        assert seen == [a1]  # the other agent's partition is not even parsed here
        # a dashboard on the same worker needs every partition
        wide = await connect(gateway.ws_url)
        await wide.subscribe(["agent_status"])
        assert log.reading == list(range(TEST_PARTITIONS))
        await wide.close()
        await wait_until(lambda: log.reading == [a1], 10, "the unneeded partitions stopped")
        # read again later: live from then on, nothing from while it was not read
        await publish(gateway.http_url, [agent_event(3, agent=other)])
        again = await connect(gateway.ws_url)
        await again.subscribe(["agent_status"], {"agentId": [other]})
        await publish(gateway.http_url, [agent_event(4, agent=other)])
        assert [m["id"] for m in await again.events(1)] == ["r-4"]
        assert not [m for m in await _drain(again, "agent_status", 0.5) if m["type"] == "agent_status"]
        await again.close()
    finally:
        await narrow.close()


async def test_a_cluster_of_one_partition_delivers_too(
        redis_cluster: LocalCluster, prefix: str, gateway_factory: Factory) -> None:
    broker = make_cluster_broker(redis_cluster.url, prefix, readers="needed", partitions=1)
    gateway = await gateway_factory(base_settings(), backend=broker)
    client = await connect(gateway.ws_url)
    try:
        await client.subscribe(["agent_status"])
        await publish(gateway.http_url, [agent_event(1), agent_event(2, agent="a2")])
        assert [m["id"] for m in await client.events(2)] == ["r-1", "r-2"]
    finally:
        await client.close()
