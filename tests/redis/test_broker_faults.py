"""The Redis broker under faults: dropped Pub/Sub connections, Redis stopped and restarted
with and without its data, Redis absent at start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import LOCAL_EPOCH, BrokerEvent, Outage, Position
from autosdlc_ws.errors import BrokerUnavailable
from autosdlc_ws.server.alerts import BrokerOutageState, outage_alert
from tests.conftest import free_port
from tests.redis.conftest import RedisServer, make_redis_broker, wait_until
from tests.redis.test_broker_contract import ev


def logged(got: list[BrokerEvent]) -> list[BrokerEvent]:
    return [g for g in got if g.epoch != LOCAL_EPOCH]


def alerts(got: list[BrokerEvent]) -> list[dict[str, object]]:
    return [g.event["data"] for g in got if g.epoch == LOCAL_EPOCH]


async def started(url: str, prefix: str, brokers: list[Backend], **kw: object) -> tuple[
        Backend, list[BrokerEvent]]:
    """A started backend whose outage reports become local alerts, as in the gateway."""
    broker = make_redis_broker(url, prefix, **kw)
    got: list[BrokerEvent] = []
    announced = BrokerOutageState()

    def on_outage(outage: Outage) -> None:
        alert = outage_alert(outage, announced, 1_700_000_000_000)
        if alert is not None:
            broker.log.deliver_local(alert)

    await broker.start(got.append, on_outage)
    brokers.append(broker)
    return broker, got


async def test_a_dropped_pubsub_connection_is_refilled_from_the_stream(
        redis_server: RedisServer, prefix: str, redis_brokers: list[Backend]) -> None:
    publisher, _ = await started(redis_server.url, prefix, redis_brokers)
    reader, got = await started(redis_server.url, prefix, redis_brokers)
    n = 0
    for round_ in range(3):
        for _ in range(10):
            await publisher.log.publish([ev(n + i) for i in range(20)])
            n += 20
        # kill every Pub/Sub connection, then publish before the readers can resubscribe:
        # those events reach the readers only through the stream
        redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
        await publisher.log.publish([ev(n + i) for i in range(20)])
        n += 20
        await wait_until(lambda r=round_: reader.log.reconnects > r, what="resubscribed")  # type: ignore[misc]
    await publisher.log.publish([ev("last")])
    n += 1
    await wait_until(lambda: len(logged(got)) >= n, what=f"{n} events")
    await asyncio.sleep(0.05)
    assert [g.offset for g in logged(got)] == list(range(1, n + 1))
    assert reader.log.reconnects >= 3 and reader.log.events_filled >= 60 and reader.log.events_lost == 0
    assert alerts(got) == []  # reconnected within the grace time: nobody is alarmed
    # what was filled from the stream joined the recent events without a gap: a resume
    # across the refills is answered from memory, the same events in the same order
    head = await reader.log.head()
    assert isinstance(head, Position)
    hits = reader.log.history_cache_hits
    history = await reader.log.history_after(position=Position(head.epoch, n - 100))
    assert history.complete and [e.offset for e in history.events] == list(range(n - 99, n + 1))
    assert reader.log.history_cache_hits == hits + 1 and reader.log.history_reads == 0


async def test_redis_stopped_and_restarted_with_its_data(
        persistent_redis: RedisServer, prefix: str, redis_brokers: list[Backend]) -> None:
    a, got_a = await started(persistent_redis.url, prefix, redis_brokers, alert_after_s=0.1)
    b, got_b = await started(persistent_redis.url, prefix, redis_brokers, alert_after_s=0.1)
    await a.log.publish([ev(i) for i in range(10)])
    epoch = (await a.log.head()).epoch
    await wait_until(lambda: len(logged(got_b)) == 10)
    persistent_redis.stop()
    await wait_until(lambda: not a.log.available and not b.log.available, what="outage noticed")
    assert not await a.log.ready()
    with pytest.raises(BrokerUnavailable):
        await b.log.publish([ev("lost")])
    with pytest.raises(BrokerUnavailable):
        await a.log.history_after(event_id="e-1")
    await wait_until(lambda: len(alerts(got_a)) == 1, what="outage alert")
    down_alert = alerts(got_a)[0]
    assert down_alert["severity"] == "critical" and down_alert["resolved"] is False
    down_alert_id = next(g.event["id"] for g in got_a if g.epoch == LOCAL_EPOCH)

    persistent_redis.start()
    await wait_until(lambda: a.log.available and b.log.available, 10, "recovery")
    assert await a.log.ready()
    await b.log.publish([ev(i) for i in range(10, 20)])
    await wait_until(lambda: len(logged(got_a)) == 20 and len(logged(got_b)) == 20)
    for got in (got_a, got_b):
        assert [g.offset for g in logged(got)] == list(range(1, 21))
        assert {g.epoch for g in logged(got)} == {epoch}
        assert [x["resolved"] for x in alerts(got)] == [False, True]
    history = await a.log.history_after(position=Position(epoch, 0))
    assert history.complete and len(history.events) == 20
    # a client whose last event was the local outage alert can still resume by its id
    await wait_until(lambda: not a.log._local_ids, what="alert ids recorded")
    by_alert = await a.log.history_after(event_id=down_alert_id)
    assert by_alert.complete and [e.offset for e in by_alert.events] == list(range(11, 21))


async def test_redis_restarted_empty_is_a_new_epoch(
        private_redis: RedisServer, prefix: str, redis_brokers: list[Backend]) -> None:
    a, got = await started(private_redis.url, prefix, redis_brokers)
    await a.log.publish([ev(i) for i in range(5)])
    old = await a.log.head()
    private_redis.stop()
    await wait_until(lambda: not a.log.available, what="outage noticed")
    private_redis.start()
    await wait_until(lambda: a.log.available, 10, "recovery")
    receipts = await a.log.publish([ev(i) for i in range(5, 8)])
    assert [r.offset for r in receipts] == [1, 2, 3]
    await wait_until(lambda: len(logged(got)) == 8)
    new = await a.log.head()
    assert new.epoch != old.epoch
    assert [(g.epoch, g.offset) for g in logged(got)] == (
        [(old.epoch, i) for i in range(1, 6)] + [(new.epoch, i) for i in range(1, 4)])
    assert a.log.epoch_resets == 1
    assert any(x["title"] == "Broker history reset" for x in alerts(got))
    stale = await a.log.history_after(position=old)
    assert not stale.complete and stale.events == []


async def test_a_log_shorter_than_what_was_delivered_starts_a_new_epoch(
        redis_server: RedisServer, prefix: str, redis_brokers: list[Backend]) -> None:
    """What a failover to a replica that missed the newest writes looks like: same
    epoch, a shorter log. Its offsets must not be handed out again to other events."""
    a, got = await started(redis_server.url, prefix, redis_brokers)
    b, got_b = await started(redis_server.url, prefix, redis_brokers)
    await a.log.publish([ev(i) for i in range(5)])
    await wait_until(lambda: len(logged(got)) == 5 and len(logged(got_b)) == 5)
    old = await a.log.head()
    # the replica had only offsets 1-3
    redis_server.command("XTRIM", f"{prefix}log", "MAXLEN", "3")
    redis_server.command("SET", f"{prefix}seq", "3")
    redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
    await wait_until(lambda: a.log.epoch_resets == 1 and b.log.epoch_resets == 1, 10, "new epoch")
    new = await a.log.head()
    assert new.epoch != old.epoch and new.offset == 0
    assert any(x["title"] == "Broker history reset" for x in alerts(got))
    receipts = await b.log.publish([ev("after")])
    assert receipts[0].offset == 1
    await wait_until(lambda: len(logged(got)) == 6 and len(logged(got_b)) == 6)
    assert (logged(got)[-1].epoch, logged(got)[-1].offset) == (new.epoch, 1)
    assert not (await a.log.history_after(position=old)).complete


async def test_start_without_redis_then_it_appears(tmp_path: Path, prefix: str,
                                                   redis_brokers: list[Backend]) -> None:
    port = free_port()
    broker, got = await started(f"redis://127.0.0.1:{port}/0", prefix, redis_brokers,
                                start_timeout_s=0.3)
    assert not broker.log.available and not await broker.log.ready()
    with pytest.raises(BrokerUnavailable):
        await broker.log.head()
    server = RedisServer(tmp_path / "late", port=port)
    server.start()
    try:
        await wait_until(lambda: broker.log.available, 10, "first connection")
        assert await broker.log.ready()
        await broker.log.publish([ev(1)])
        await wait_until(lambda: len(got) == 1)
        assert alerts(got) == []
    finally:
        await broker.close()
        server.stop(kill=True)
