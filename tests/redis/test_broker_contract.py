"""The broker contract (`EventLog`, `SessionStore`, `SharedLimits`), run against both backends.

Every test here gets a `kit` for the memory backend and one for the Redis
backend, and must pass unchanged on both: that is what lets the connection
code ignore which one it has. Time-dependent tests (TTL, age, refill) move
time with `kit.wait`: the memory backend's injected clock jumps; Redis keeps
its own clock (TTLs, stream timestamps), so there the wait is a real one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import BrokerEvent, LogPosition, Position, SessionRecord, VectorPosition
from autosdlc_ws.broker.memory import memory_backend
from autosdlc_ws.broker.partitioned_log import PartitionedEventLog
from autosdlc_ws.broker.redis_log import RedisEventLog
from autosdlc_ws.core.partitions import partition_of
from tests.conftest import timeout
from tests.redis.cluster import LocalCluster
from tests.redis.conftest import TEST_PARTITIONS, RedisServer, make_cluster_broker, make_redis_broker


def ev(i: int | str, **data: Any) -> dict[str, Any]:
    return {"id": f"e-{i}", "type": "agent_status", "timestamp": 1_700_000_000_000,
            "data": {"agentId": "a1", "status": "busy", "n": i, **data}}


#: The partition every `ev()` lands in on the cluster (they are all about agent a1).
A1 = partition_of("agent_status", {"agentId": "a1"}, TEST_PARTITIONS)


@dataclass
class Kit:
    kind: str
    server: RedisServer | None
    prefix: str
    cluster: LocalCluster | None = None
    #: Redis keeps no recent events in memory: every history answer is read from the stream
    stream_only: bool = False
    brokers: list[Backend] = field(default_factory=list)
    received: dict[int, list[BrokerEvent]] = field(default_factory=dict)
    now: float = 1000.0  # the memory backends' clock, moved by `wait`

    def clock(self) -> float:
        return self.now

    async def wait(self, seconds: float) -> None:
        """Let `seconds` pass for the backend: the memory clock jumps, Redis's runs for real."""
        if self.kind == "memory":
            self.now += seconds
        else:
            await asyncio.sleep(seconds)

    async def make(self, *, max_events: int = 1000, max_age_s: float = 3600.0,
                   snapshot_max_keys: int = 100_000, snapshot_ttl_s: float = 86_400.0,
                   recent_events: int = 10_000) -> Backend:
        broker: Backend
        if self.kind == "memory":
            broker = memory_backend(max_events=max_events, max_age_s=max_age_s, clock=self.clock,
                                    snapshot_max_keys=snapshot_max_keys, snapshot_ttl_s=snapshot_ttl_s)
        elif self.kind == "cluster":
            assert self.cluster is not None
            broker = make_cluster_broker(self.cluster.url, self.prefix, max_events=max_events,
                                         max_age_s=max_age_s, snapshot_max_keys=snapshot_max_keys,
                                         snapshot_ttl_s=snapshot_ttl_s, recent_events=recent_events)
        else:
            assert self.server is not None
            broker = make_redis_broker(self.server.url, self.prefix, max_events=max_events,
                                       max_age_s=max_age_s, snapshot_max_keys=snapshot_max_keys,
                                       snapshot_ttl_s=snapshot_ttl_s,
                                       recent_events=0 if self.stream_only else recent_events)
        got: list[BrokerEvent] = []
        self.received[id(broker)] = got
        await broker.start(got.append)
        self.brokers.append(broker)
        return broker

    def got(self, broker: Backend) -> list[BrokerEvent]:
        return self.received[id(broker)]

    async def wait_received(self, broker: Backend, count: int) -> list[BrokerEvent]:
        deadline = time.monotonic() + timeout(5)
        while len(self.got(broker)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return self.got(broker)

    # Positions: the `ev()` events' own log (one partition of the cluster's vector).

    def part(self, position: LogPosition) -> Position:
        if isinstance(position, VectorPosition):
            return position.parts[A1]
        return position

    def offset(self, position: LogPosition) -> int:
        return self.part(position).offset

    def at(self, head: LogPosition, offset: int) -> LogPosition:
        """`head` moved back to `offset` in the `ev()` events' log."""
        if isinstance(head, VectorPosition):
            parts = list(head.parts)
            parts[A1] = Position(parts[A1].epoch, offset)
            return VectorPosition(tuple(parts))
        return Position(head.epoch, offset)

    def agent(self, n: int) -> str:
        """The n-th agent id whose events share the `ev()` events' log (on the cluster,
        partition A1), so tests of one log's bounds hold on every backend."""
        if self.kind != "cluster":
            return f"a{n}"
        found = [f"a{i}" for i in range(1, 10_000)
                 if partition_of("agent_status", {"agentId": f"a{i}"}, TEST_PARTITIONS) == A1]
        return found[n - 1]

    def part_log(self, broker: Backend) -> RedisEventLog:
        """The Redis log holding the `ev()` events."""
        if isinstance(broker.log, PartitionedEventLog):
            return broker.log.logs[A1]
        assert isinstance(broker.log, RedisEventLog)
        return broker.log

    async def lose_history(self, broker: Backend) -> Backend:
        """What a restarted memory broker / a Redis that lost its data looks like."""
        if self.kind == "memory":
            return await self.make()
        if self.kind == "cluster":
            assert self.cluster is not None and isinstance(broker.log, PartitionedEventLog)
            keys = broker.log.logs[A1].link.log_keys[:4]
            self.cluster.command(keys[0], "DEL", *keys)
            return broker
        assert self.server is not None
        for key in ("epoch", "seq", "log", "ids"):
            self.server.command("DEL", f"{self.prefix}{key}")
        return broker


async def _kit(kind: str, request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Kit]:
    server: RedisServer | None = None
    cluster: LocalCluster | None = None
    stream_only = kind == "redis-stream"
    if stream_only:
        kind = "redis"
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
    elif kind == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
    k = Kit(kind, server, prefix, cluster, stream_only)
    yield k
    for broker in k.brokers:
        await broker.close()


@pytest.fixture(params=["memory", "redis", "redis-stream", "cluster"])
async def kit(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Kit]:
    """The contract every broker keeps: each test runs on each (Redis twice: answering
    history from the recent events in memory, and from the stream alone)."""
    async for k in _kit(request.param, request, prefix):
        yield k


@pytest.fixture(params=["redis", "cluster"])
async def redis_kit(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Kit]:
    """For what only a shared broker can do (several workers on one log)."""
    async for k in _kit(request.param, request, prefix):
        yield k


async def test_offsets_grow_by_one_and_live_delivery_is_in_order(kit: Kit) -> None:
    broker = await kit.make()
    assert kit.offset(await broker.log.head()) == 0
    assert await broker.log.ready()
    receipts = await broker.log.publish([ev(i) for i in range(1, 6)])
    assert [r.offset for r in receipts] == [1, 2, 3, 4, 5]
    assert not any(r.duplicate for r in receipts)
    receipts += await broker.log.publish([ev(6)])
    assert receipts[-1].offset == 6
    got = await kit.wait_received(broker, 6)
    assert [g.offset for g in got] == [1, 2, 3, 4, 5, 6]
    assert [g.event["id"] for g in got] == [f"e-{i}" for i in range(1, 7)]
    assert got[0].event == ev(1)
    head = await broker.log.head()
    assert kit.offset(head) == 6 and all(g.epoch == kit.part(head).epoch for g in got)


async def test_a_known_id_is_a_duplicate_and_not_delivered_again(kit: Kit) -> None:
    broker = await kit.make()
    first = await broker.log.publish([ev(1), ev(2)])
    again = await broker.log.publish([ev(2), ev(3), ev(3)])
    assert [(r.id, r.offset, r.duplicate) for r in first] == [("e-1", 1, False), ("e-2", 2, False)]
    assert [(r.id, r.offset, r.duplicate) for r in again] == [
        ("e-2", 2, True), ("e-3", 3, False), ("e-3", 3, True)]
    await kit.wait_received(broker, 3)
    await asyncio.sleep(0.05)
    assert [g.event["id"] for g in kit.got(broker)] == ["e-1", "e-2", "e-3"]
    assert kit.offset(await broker.log.head()) == 3


async def test_history_after_position_and_after_event_id(kit: Kit) -> None:
    broker = await kit.make()
    await broker.log.publish([ev(i) for i in range(1, 11)])
    head = await broker.log.head()
    by_pos = await broker.log.history_after(position=kit.at(head, 4))
    assert by_pos.complete and by_pos.reason is None
    assert [e.offset for e in by_pos.events] == [5, 6, 7, 8, 9, 10]
    assert by_pos.head == head
    by_id = await broker.log.history_after(event_id="e-7")
    assert by_id.complete and [e.event["id"] for e in by_id.events] == ["e-8", "e-9", "e-10"]
    at_head = await broker.log.history_after(event_id="e-10")
    assert at_head.complete and at_head.events == [] and at_head.head == head
    limited = await broker.log.history_after(position=kit.at(head, 0), limit=3)
    assert [e.offset for e in limited.events] == [1, 2, 3]
    unknown = await broker.log.history_after(event_id="nope")
    assert not unknown.complete and unknown.events == [] and unknown.reason
    with pytest.raises(ValueError):
        await broker.log.history_after()


async def test_a_position_from_another_epoch_is_incomplete(kit: Kit) -> None:
    broker = await kit.make()
    await broker.log.publish([ev(i) for i in range(1, 4)])
    old = await broker.log.head()
    broker = await kit.lose_history(broker)
    await broker.log.publish([ev("new")])
    new_head = await broker.log.head()
    assert kit.part(new_head).epoch != kit.part(old).epoch and kit.offset(new_head) == 1
    result = await broker.log.history_after(position=old)
    assert not result.complete and result.events == [] and result.reason
    assert (await broker.log.history_after(event_id="e-1")).complete is False
    fresh = await broker.log.history_after(position=kit.at(new_head, 0))
    assert fresh.complete and [e.event["id"] for e in fresh.events] == ["e-new"]


async def test_trimming_by_count_keeps_the_newest_and_reports_the_gap(kit: Kit) -> None:
    broker = await kit.make(max_events=20)
    for start in range(1, 301, 50):
        await broker.log.publish([ev(i) for i in range(start, start + 50)])
    head = await broker.log.head()
    assert kit.offset(head) == 300
    old = await broker.log.history_after(position=kit.at(head, 0))
    assert not old.complete and old.reason
    offsets = [e.offset for e in old.events]
    # the newest max_events are always kept; Redis's MAXLEN ~ may keep up to a node more
    assert offsets == list(range(offsets[0], 301)) and 20 <= len(offsets) < 100
    recent = await broker.log.history_after(position=kit.at(head, 290))
    assert recent.complete and [e.offset for e in recent.events] == list(range(291, 301))
    # the id of a trimmed event is forgotten: resuming from it is a reported gap
    assert not (await broker.log.history_after(event_id="e-1")).complete
    assert (await broker.log.history_after(event_id="e-295")).complete


async def test_trimming_by_age(kit: Kit) -> None:
    broker = await kit.make(max_age_s=0.3)
    await broker.log.publish([ev(i) for i in range(1, 6)])
    await kit.wait(0.4)
    await broker.log.publish([ev(i) for i in range(6, 8)])
    head = await broker.log.head()
    result = await broker.log.history_after(position=kit.at(head, 0))
    assert not result.complete
    assert [e.offset for e in result.events] == [6, 7]
    assert not (await broker.log.history_after(event_id="e-3")).complete
    await kit.wait(0.4)
    empty = await broker.log.history_after(position=kit.at(head, 7))
    assert empty.complete and empty.events == []
    assert (await broker.log.publish([ev(8)]))[0].offset == 8


async def test_sessions_round_trip_and_expire(kit: Kit) -> None:
    broker = await kit.make()
    head = await broker.log.head()
    record = SessionRecord("sess-1", "jwt:alice", [{"id": "sub-1", "events": ["agent_status"],
                                                    "filters": {"agentId": ["a1"]}}], head)
    await broker.sessions.save(record, 60)
    loaded = await broker.sessions.load("sess-1")
    assert loaded is not None and loaded.to_json() == record.to_json()
    assert await broker.sessions.load("sess-missing") is None
    await broker.sessions.delete("sess-1")
    assert await broker.sessions.load("sess-1") is None
    await broker.sessions.save(record, 0.15)
    assert await broker.sessions.load("sess-1") is not None
    await kit.wait(0.3)
    assert await broker.sessions.load("sess-1") is None


async def test_a_session_resumed_elsewhere_refuses_the_old_connections_writes(kit: Kit) -> None:
    """Two connections on one session for a moment (the client reconnected to another
    worker before the old socket was seen closed): once the new one claims the
    record, the old one's writes do not land over it."""
    broker = await kit.make()
    head = await broker.log.head()
    x = {"id": "sub-x", "events": ["agent_status"], "filters": {}}
    y = {"id": "sub-y", "events": ["agent_log"], "filters": {}}
    old = SessionRecord("sess-2", "jwt:alice", [x], head, owner="conn-old")
    assert await broker.sessions.save(old, 60)
    assert await broker.sessions.save(replace(old, subscriptions=[x, y]), 60, claim=False)  # still its own
    new = replace(old, subscriptions=[x, y], owner="conn-new")
    assert await broker.sessions.save(new, 60)  # the resume claims it
    assert not await broker.sessions.save(replace(old, subscriptions=[]), 60, claim=False)
    assert await broker.sessions.load("sess-2") == new
    assert await broker.sessions.save(replace(new, subscriptions=[y]), 60, claim=False)
    # a record written before owners existed, and a missing one, take any write
    await broker.sessions.save(SessionRecord("sess-3", "jwt:alice", [], head), 60)
    assert await broker.sessions.save(SessionRecord("sess-3", "jwt:alice", [x], head, owner="c"), 60, claim=False)
    assert await broker.sessions.save(SessionRecord("sess-4", "jwt:alice", [x], head, owner="c"), 60, claim=False)
    assert (await broker.sessions.load("sess-4")) is not None


async def test_redis_shares_one_log_between_workers(redis_kit: Kit) -> None:
    kit = redis_kit
    a, b = await kit.make(), await kit.make()
    assert isinstance(a.log, RedisEventLog | PartitionedEventLog)
    assert isinstance(b.log, RedisEventLog | PartitionedEventLog)
    await a.log.publish([ev(1), ev(2)])
    await b.log.publish([ev(3)])
    assert (await a.log.publish([ev(3)]))[0].duplicate
    for broker in (a, b):
        got = await kit.wait_received(broker, 3)
        assert [(g.offset, g.event["id"]) for g in got] == [(1, "e-1"), (2, "e-2"), (3, "e-3")]
    assert await a.log.head() == await b.log.head()
    session = SessionRecord("s", "jwt:bob", [], await a.log.head())
    await a.sessions.save(session, 60)
    assert (await b.sessions.load("s")) == session


async def test_a_recent_range_is_answered_from_memory_and_an_older_one_from_the_stream(
        redis_kit: Kit) -> None:
    kit = redis_kit
    # the log of the ev() events keeps its 10 newest in memory (the cluster shares the total out)
    broker = await kit.make(recent_events=10 * (TEST_PARTITIONS if kit.kind == "cluster" else 1))
    log = kit.part_log(broker)
    await broker.log.publish([ev(i) for i in range(1, 31)])
    delivered = await kit.wait_received(broker, 30)
    head = await broker.log.head()
    recent = await broker.log.history_after(position=kit.at(head, 25))
    assert recent.complete and [e.offset for e in recent.events] == [26, 27, 28, 29, 30]
    assert recent.events[0] is delivered[25]  # the object the reader delivered, not parsed again
    by_id = await broker.log.history_after(event_id="e-21")
    assert by_id.complete and [e.event["id"] for e in by_id.events] == [f"e-{i}" for i in range(22, 31)]
    assert (log.history_cache_hits, log.history_reads) == (2, 0)
    older = await broker.log.history_after(position=kit.at(head, 5))
    assert older.complete and [e.offset for e in older.events] == list(range(6, 31))
    assert [e.event for e in older.events] == [d.event for d in delivered[5:]]
    assert log.history_reads == 1
    limited = await broker.log.history_after(position=kit.at(head, 22), limit=3)
    assert not limited.complete and [e.offset for e in limited.events] == [23, 24, 25]
    assert log.history_reads == 1


# --- shared limits: connection slots and token buckets -------------------------------------


async def test_connection_slots_per_identity(kit: Kit) -> None:
    broker = await kit.make()
    assert await broker.limits.acquire_slot("jwt:alice", "c1", 2)
    assert await broker.limits.acquire_slot("jwt:alice", "c2", 2)
    assert not await broker.limits.acquire_slot("jwt:alice", "c3", 2)
    assert await broker.limits.acquire_slot("jwt:alice", "c2", 2)  # a holder never takes a second slot
    assert await broker.limits.acquire_slot("jwt:bob", "c4", 2)  # identities are counted apart
    await broker.limits.release_slot("jwt:alice", "c1")
    await broker.limits.release_slot("jwt:alice", "c1")  # releasing twice, or what was never held, is harmless
    await broker.limits.release_slot("jwt:nobody", "cx")
    assert await broker.limits.acquire_slot("jwt:alice", "c3", 2)
    assert not await broker.limits.acquire_slot("jwt:alice", "c5", 2)
    await broker.limits.refresh_slots()
    assert not await broker.limits.acquire_slot("jwt:alice", "c5", 2)
    assert not await broker.limits.acquire_slot("jwt:carol", "c6", 0)


async def test_token_buckets_by_key(kit: Kit) -> None:
    broker = await kit.make()
    waits = [await broker.limits.take_tokens("rate:t:a", 2, 3) for _ in range(4)]
    assert waits[:3] == [0, 0, 0]
    assert 400 <= waits[3] <= 500  # one token at 2/s
    assert await broker.limits.take_tokens("rate:t:b", 2, 3) == 0  # keys are apart
    await kit.wait(0.55)
    assert await broker.limits.take_tokens("rate:t:a", 2, 3) == 0  # refilled
    assert await broker.limits.take_tokens("rate:t:a", 2, 3) > 0
    assert await broker.limits.take_tokens("rate:t:c", 10, 5, cost=5) == 0  # a cost of several tokens
    assert 80 <= await broker.limits.take_tokens("rate:t:c", 10, 5) <= 100


async def test_redis_shares_slots_and_buckets_between_workers(redis_kit: Kit) -> None:
    kit = redis_kit
    a, b = await kit.make(), await kit.make()
    assert await a.limits.acquire_slot("jwt:alice", "a1", 2)
    assert await b.limits.acquire_slot("jwt:alice", "b1", 2)
    assert not await a.limits.acquire_slot("jwt:alice", "a2", 2)
    assert not await b.limits.acquire_slot("jwt:alice", "b2", 2)
    await a.limits.release_slot("jwt:alice", "a1")
    assert await b.limits.acquire_slot("jwt:alice", "b2", 2)
    waits = [await (a, b)[i % 2].limits.take_tokens("rate:publish:jwt:alice", 1, 4) for i in range(6)]
    assert waits[:4] == [0, 0, 0, 0] and all(w > 0 for w in waits[4:])
