"""The embedded broker: offsets, live delivery, dedup, history with retention, sessions.

Time is a plain number the test moves (`clock=`); no sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import BrokerEvent, Position, SessionRecord
from autosdlc_ws.broker.memory import memory_backend


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(i: int | str) -> dict[str, Any]:
    return {"id": f"e{i}", "type": "agent_status", "timestamp": 1, "data": {"agentId": "a1", "n": i}}


async def started(**kwargs: Any) -> tuple[Backend, list[BrokerEvent], FakeClock]:
    clock = FakeClock()
    broker = memory_backend(clock=clock, **kwargs)
    received: list[BrokerEvent] = []
    await broker.start(received.append)
    return broker, received, clock


def ids(events: list[BrokerEvent]) -> list[str]:
    return [e.event["id"] for e in events]


async def test_offsets_increase_by_one() -> None:
    broker, _, _ = await started()
    assert await broker.log.head() == Position(broker.log.epoch, 0)
    receipts = await broker.log.publish([ev(1), ev(2)])
    receipts += await broker.log.publish([ev(3)])
    assert [r.offset for r in receipts] == [1, 2, 3]
    assert [r.id for r in receipts] == ["e1", "e2", "e3"]
    assert not any(r.duplicate for r in receipts)
    assert await broker.log.head() == Position(broker.log.epoch, 3)


async def test_live_handler_gets_events_in_order() -> None:
    broker, received, _ = await started()
    await broker.log.publish([ev(i) for i in range(10)])
    await broker.log.publish([ev(10)])
    assert ids(received) == [f"e{i}" for i in range(11)]
    assert [r.offset for r in received] == list(range(1, 12))
    assert all(r.epoch == broker.log.epoch for r in received)
    assert received[0].event == ev(0)


async def test_duplicate_id_is_not_delivered_twice() -> None:
    broker, received, _ = await started()
    first = await broker.log.publish([ev(1)])
    again = await broker.log.publish([ev(2), {**ev(1), "data": {"changed": True}}, ev(2)])
    assert first[0].offset == 1
    assert [(r.id, r.offset, r.duplicate) for r in again] == [("e2", 2, False), ("e1", 1, True),
                                                              ("e2", 2, True)]
    assert ids(received) == ["e1", "e2"]
    assert received[0].event == ev(1)  # the first copy wins
    assert await broker.log.head() == Position(broker.log.epoch, 2)


async def test_nothing_is_delivered_after_close() -> None:
    broker, received, _ = await started()
    await broker.close()
    await broker.log.publish([ev(1)])
    assert received == []
    history = await broker.log.history_after(position=Position(broker.log.epoch, 0))
    assert ids(history.events) == ["e1"]


async def test_history_after_event_id() -> None:
    broker, _, _ = await started()
    await broker.log.publish([ev(i) for i in range(1, 6)])
    result = await broker.log.history_after(event_id="e2")
    assert result.complete and result.reason is None
    assert ids(result.events) == ["e3", "e4", "e5"]
    assert [e.offset for e in result.events] == [3, 4, 5]
    assert result.head == Position(broker.log.epoch, 5)
    latest = await broker.log.history_after(event_id="e5")
    assert latest.complete and latest.events == []


async def test_history_after_position() -> None:
    broker, _, _ = await started()
    await broker.log.publish([ev(i) for i in range(1, 6)])
    result = await broker.log.history_after(position=Position(broker.log.epoch, 0))
    assert result.complete and ids(result.events) == ["e1", "e2", "e3", "e4", "e5"]
    result = await broker.log.history_after(position=Position(broker.log.epoch, 3))
    assert result.complete and ids(result.events) == ["e4", "e5"]
    limited = await broker.log.history_after(position=Position(broker.log.epoch, 0), limit=2)
    assert ids(limited.events) == ["e1", "e2"]


async def test_history_needs_a_position_or_an_id() -> None:
    broker, _, _ = await started()
    with pytest.raises(ValueError):
        await broker.log.history_after()


async def test_unknown_event_id_is_incomplete() -> None:
    broker, _, _ = await started()
    await broker.log.publish([ev(1)])
    result = await broker.log.history_after(event_id="nope")
    assert not result.complete and result.reason
    assert result.events == []
    assert result.head == Position(broker.log.epoch, 1)


async def test_position_of_another_epoch_is_incomplete() -> None:
    broker, _, _ = await started()
    other = memory_backend()
    assert other.log.epoch != broker.log.epoch
    await broker.log.publish([ev(1)])
    result = await broker.log.history_after(position=Position(other.log.epoch, 0))
    assert not result.complete and result.reason and "reset" in result.reason
    assert result.events == []


async def test_trimming_by_count() -> None:
    broker, received, _ = await started(max_events=3)
    await broker.log.publish([ev(i) for i in range(1, 7)])
    assert len(received) == 6  # trimming never drops live delivery
    # offsets 4..6 remain
    kept = await broker.log.history_after(position=Position(broker.log.epoch, 3))
    assert kept.complete and ids(kept.events) == ["e4", "e5", "e6"]
    lost = await broker.log.history_after(position=Position(broker.log.epoch, 2))
    assert not lost.complete and lost.reason
    assert ids(lost.events) == ["e4", "e5", "e6"]  # what is left, after the gap
    assert not (await broker.log.history_after(event_id="e2")).complete
    assert (await broker.log.history_after(event_id="e4")).complete
    # a trimmed id may be published again: it is a new event now
    again = await broker.log.publish([ev(1)])
    assert again[0].offset == 7 and not again[0].duplicate


async def test_trimming_by_age() -> None:
    broker, _, clock = await started(max_age_s=60)
    await broker.log.publish([ev(1), ev(2)])
    clock.now += 30
    await broker.log.publish([ev(3)])
    clock.now += 31  # e1, e2 are 61 s old, e3 is 31 s old
    result = await broker.log.history_after(position=Position(broker.log.epoch, 0))
    assert not result.complete and result.reason
    assert ids(result.events) == ["e3"]
    assert (await broker.log.history_after(position=Position(broker.log.epoch, 2))).complete
    assert not (await broker.log.history_after(event_id="e1")).complete
    clock.now += 30  # everything expired
    empty = await broker.log.history_after(position=Position(broker.log.epoch, 2))
    assert not empty.complete and empty.events == []
    up_to_date = await broker.log.history_after(position=Position(broker.log.epoch, 3))
    assert up_to_date.complete and up_to_date.events == []
    assert await broker.log.head() == Position(broker.log.epoch, 3)  # offsets never go back


async def test_age_at_the_limit_is_kept() -> None:
    broker, _, clock = await started(max_age_s=60)
    await broker.log.publish([ev(1)])
    clock.now += 60
    assert ids((await broker.log.history_after(position=Position(broker.log.epoch, 0))).events) == ["e1"]
    clock.now += 0.001
    assert (await broker.log.history_after(position=Position(broker.log.epoch, 0))).events == []


async def test_sessions_save_load_and_expire() -> None:
    broker, _, clock = await started()
    record = SessionRecord("s1", "jwt:alice", [{"id": "sub-1", "events": ["agent_*"], "filters": {}}],
                           Position(broker.log.epoch, 4))
    await broker.sessions.save(record, ttl_s=300)
    assert await broker.sessions.load("s1") == record
    assert await broker.sessions.load("s2") is None
    clock.now += 299
    assert await broker.sessions.load("s1") == record
    clock.now += 1
    assert await broker.sessions.load("s1") is None


async def test_saving_again_extends_the_session() -> None:
    broker, _, clock = await started()
    await broker.sessions.save(SessionRecord("s1", "jwt:a"), ttl_s=100)
    clock.now += 90
    await broker.sessions.save(SessionRecord("s1", "jwt:a", [{"id": "x"}]), ttl_s=100)
    clock.now += 90
    loaded = await broker.sessions.load("s1")
    assert loaded is not None and loaded.subscriptions == [{"id": "x"}]


async def test_delete_session_and_expired_sessions_are_dropped() -> None:
    broker, _, clock = await started()
    await broker.sessions.save(SessionRecord("s1", "jwt:a"), ttl_s=10)
    await broker.sessions.delete("s1")
    assert await broker.sessions.load("s1") is None
    await broker.sessions.delete("never-existed")
    for i in range(100):
        await broker.sessions.save(SessionRecord(f"old{i}", "jwt:a"), ttl_s=10)
    clock.now += 11
    await broker.sessions.save(SessionRecord("new", "jwt:a"), ttl_s=10)
    assert list(broker.sessions._sessions) == ["new"]  # type: ignore[attr-defined]  # expired ones do not pile up


def test_session_record_json_round_trip() -> None:
    record = SessionRecord("s1", "jwt:a", [{"id": "sub"}], Position("ep", 7))
    assert SessionRecord.from_json(record.to_json()) == record
    bare = SessionRecord("s2", "api_key:k")
    assert SessionRecord.from_json(bare.to_json()) == bare


async def test_ready() -> None:
    broker, _, _ = await started()
    assert await broker.log.ready()


async def test_token_buckets_refill_on_the_injected_clock() -> None:
    broker, _, clock = await started()
    assert [await broker.limits.take_tokens("k", 2, 2) for _ in range(3)] == [0, 0, 500]
    clock.now += 0.5  # one token at 2/s; no real time passes
    assert await broker.limits.take_tokens("k", 2, 2) == 0
    assert await broker.limits.take_tokens("k", 2, 2) == 500
