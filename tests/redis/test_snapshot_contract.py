"""`EventLog.snapshot`, the last values behind "snapshot on subscribe", on both backends.

The same tests run on the memory backend and on Redis (whose PUBLISH script
keeps the last values next to the log), with the kit of test_broker_contract.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.redis import test_broker_contract as contract
from tests.redis.test_broker_contract import Kit

TYPES = frozenset({"agent_status", "agent_tdd_phase", "workflow_progress", "system_notification"})
NO_FILTERS: dict[str, frozenset[str]] = {}

# The broker contract's fixtures: each test runs on memory and on Redis (`kit`),
# or on Redis only (`redis_kit`).
kit = contract.kit
redis_kit = contract.redis_kit


def ev(n: int, type_: str = "agent_status", **data: Any) -> dict[str, Any]:
    return {"id": f"s-{n}", "type": type_, "timestamp": 1_700_000_000_000 + n, "data": data}


def ids(result: Any) -> list[str]:
    return [e.event["id"] for e in result.events]


async def test_newest_per_type_and_resource_oldest_first_as_of_the_head(kit: Kit) -> None:
    broker = await kit.make()
    assert (await broker.log.snapshot(TYPES, NO_FILTERS)).events == []
    receipts = await broker.log.publish([
        ev(1, agentId="a1", status="idle"), ev(2, agentId="a2", status="busy"),
        ev(3, "agent_tdd_phase", agentId="a1", taskId="t1"), ev(4, agentId="a1", status="busy"),
        ev(5, "system_notification", level="info"), ev(6, "workflow_progress", workflowId="w1", taskId="t9"),
    ])
    offsets = {r.id: r.offset for r in receipts}
    await broker.log.publish([ev(4, agentId="a1", status="stale duplicate")])  # a duplicate id changes nothing
    result = await broker.log.snapshot(TYPES, NO_FILTERS)
    assert ids(result) == ["s-2", "s-3", "s-4", "s-5", "s-6"]
    assert [e.offset for e in result.events] == [offsets[i] for i in ids(result)]
    assert result.events[2].event == ev(4, agentId="a1", status="busy")
    assert result.position == await broker.log.head()
    assert all(result.position.covers(e) for e in result.events)


async def test_types_and_filters_select_like_a_subscription(kit: Kit) -> None:
    broker = await kit.make()
    await broker.log.publish([
        ev(1, agentId="a1", workflowId="w1"), ev(2, agentId="a2", workflowId="w2"),
        ev(3, "workflow_progress", workflowId="w1"), ev(4, "agent_tdd_phase", agentId="a1", taskId="t1"),
        ev(5, agentId='a"|x'),
    ])
    assert ids(await broker.log.snapshot(frozenset({"agent_status"}), NO_FILTERS)) == ["s-1", "s-2", "s-5"]
    assert ids(await broker.log.snapshot(TYPES, {"workflowId": frozenset({"w1"})})) == ["s-1", "s-3"]
    assert ids(await broker.log.snapshot(TYPES, {"taskId": frozenset({"t1"})})) == ["s-4"]
    assert ids(await broker.log.snapshot(
        TYPES, {"agentId": frozenset({"a1", "a2"}), "workflowId": frozenset({"w2"})})) == ["s-2"]
    assert ids(await broker.log.snapshot(TYPES, {"agentId": frozenset({'a"|x'})})) == ["s-5"]
    assert ids(await broker.log.snapshot(TYPES, {"agentId": frozenset({"a"})})) == []
    absurd = frozenset(f"nobody-{i}" for i in range(2000))
    assert (await broker.log.snapshot(TYPES, {"agentId": absurd})).events == []


async def test_a_replaced_value_is_found_only_by_its_new_resources(kit: Kit) -> None:
    broker = await kit.make()
    await broker.log.publish([ev(1, agentId="a1", taskId="t1")])
    await broker.log.publish([ev(2, agentId="a1", taskId="t2")])
    await broker.log.publish([ev(3, agentId="a1")])
    assert (await broker.log.snapshot(TYPES, {"taskId": frozenset({"t1"})})).events == []
    assert (await broker.log.snapshot(TYPES, {"taskId": frozenset({"t2"})})).events == []
    assert ids(await broker.log.snapshot(TYPES, {"agentId": frozenset({"a1"})})) == ["s-3"]


async def test_max_keys_keeps_the_newest_keys(kit: Kit) -> None:
    broker = await kit.make(snapshot_max_keys=3)  # on the cluster: per partition, as here
    await broker.log.publish([ev(n, agentId=kit.agent(n)) for n in range(1, 6)])
    await broker.log.publish([ev(6, agentId=kit.agent(3))])
    assert ids(await broker.log.snapshot(TYPES, NO_FILTERS)) == ["s-4", "s-5", "s-6"]
    assert (await broker.log.snapshot(TYPES, {"agentId": frozenset({kit.agent(1)})})).events == []


async def test_values_older_than_the_ttl_are_not_sent(kit: Kit) -> None:
    broker = await kit.make(snapshot_ttl_s=0.3)
    await broker.log.publish([ev(1, agentId="a1"), ev(2, agentId="a2")])
    await kit.wait(0.4)
    await broker.log.publish([ev(3, agentId="a2")])
    assert ids(await broker.log.snapshot(TYPES, NO_FILTERS)) == ["s-3"]
    # many later publishes sweep the expired ones out of the store as well
    await broker.log.publish([ev(n, agentId="a2") for n in range(4, 140)])
    assert ids(await broker.log.snapshot(TYPES, NO_FILTERS)) == ["s-139"]


async def test_max_keys_zero_keeps_no_last_values(kit: Kit) -> None:
    broker = await kit.make(snapshot_max_keys=0)
    await broker.log.publish([ev(1, agentId="a1")])
    result = await broker.log.snapshot(TYPES, NO_FILTERS)
    assert result.events == [] and kit.offset(result.position) == 1


async def test_a_lost_log_loses_its_last_values_too(kit: Kit) -> None:
    broker = await kit.make()
    await broker.log.publish([ev(1, agentId="a1")])
    broker = await kit.lose_history(broker)
    await broker.log.publish([ev(2, agentId=kit.agent(2))])
    result = await broker.log.snapshot(TYPES, NO_FILTERS)
    assert ids(result) == ["s-2"] and kit.offset(result.position) == 1


async def test_redis_workers_share_the_last_values(redis_kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """Published through one worker, read through another; by the time the answer
    comes, that worker's live handler has had every event up to its position."""
    a, b = await redis_kit.make(), await redis_kit.make()
    await a.log.publish([ev(n, agentId=redis_kit.agent(n % 3 + 1)) for n in range(1, 31)])
    result = await b.log.snapshot(TYPES, NO_FILTERS)
    assert ids(result) == ["s-28", "s-29", "s-30"]
    assert redis_kit.offset(result.position) == 30
    assert [g.offset for g in redis_kit.got(b)] == list(range(1, 31))
    # b's live reader lags behind the log: the snapshot waits for it
    b_log = redis_kit.part_log(b)
    on_payload = b_log._on_payload

    async def late(payload: bytes) -> None:
        await asyncio.sleep(0.2)
        await on_payload(payload)

    monkeypatch.setattr(b_log, "_on_payload", late)
    await a.log.publish([ev(31, agentId="a1")])
    result = await b.log.snapshot(TYPES, NO_FILTERS)
    assert redis_kit.offset(result.position) == 31
    assert redis_kit.got(b)[-1].offset == 31
