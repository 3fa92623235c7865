"""Exact resume on a partitioned log: the send order, kept and read back with plain values."""

from __future__ import annotations

import random

import orjson

from autosdlc_ws.broker.base import LOCAL_EPOCH, BrokerEvent, Position, VectorPosition
from autosdlc_ws.broker.trail import SendTrail, resume_position

START = VectorPosition((Position("e0", 10), Position("e1", 20), Position("e2", 30)))


def rec(partition: int, offset: int, epoch: str | None = None) -> BrokerEvent:
    return BrokerEvent({"id": f"p{partition}-{offset}"}, offset, epoch or f"e{partition}", partition)


def saved(trail: SendTrail) -> dict[str, object]:
    """What the session record keeps: through JSON, as Redis stores it."""
    loaded: dict[str, object] = orjson.loads(orjson.dumps(trail.to_json()))
    return loaded


def test_the_last_event_names_a_position_in_every_partition() -> None:
    trail = SendTrail(3)
    for record in (rec(0, 11), rec(1, 21), rec(0, 12), rec(2, 31), rec(1, 22)):
        trail.record(record)
    # the client got everything up to p0-12: p1 stops at 21 and p2 at its start, 30
    resume = resume_position(START, saved(trail), "p0-12", (0, Position("e0", 12)))
    assert resume is not None and resume.exact
    assert resume.position.parts == (Position("e0", 12), Position("e1", 21), Position("e2", 30))
    last = resume_position(START, saved(trail), "p1-22", (1, Position("e1", 22)))
    assert last is not None and last.position.parts == (
        Position("e0", 12), Position("e1", 22), Position("e2", 31))


def test_a_local_alert_is_placed_by_its_id() -> None:
    trail = SendTrail(3)
    trail.record(rec(0, 11))
    trail.record(BrokerEvent({"id": "alert-1"}, 0, LOCAL_EPOCH, 0))
    trail.record(rec(2, 31))
    resume = resume_position(START, saved(trail), "alert-1", None)
    assert resume is not None and resume.exact
    assert resume.position.parts == (Position("e0", 11), Position("e1", 20), Position("e2", 30))


def test_old_events_fold_into_the_base_and_the_window_stays_bounded() -> None:
    trail = SendTrail(2, window=4)
    for offset in range(1, 21):
        trail.record(rec(offset % 2, offset))
    kept = saved(trail)
    assert len(kept["sent"]) == 8  # type: ignore[arg-type]
    start = VectorPosition((Position("e0", 0), Position("e1", 0)))
    resume = resume_position(start, kept, "p1-17", (1, Position("e1", 17)))
    assert resume is not None and resume.exact
    assert resume.position.parts == (Position("e0", 16), Position("e1", 17))


def test_without_the_trail_nothing_is_skipped() -> None:
    """A worker killed before saving the trail: the event's own partition resumes
    exactly, the others from the session's start (duplicates, never a gap)."""
    resume = resume_position(START, None, "p1-25", (1, Position("e1", 25)))
    assert resume is not None and not resume.exact
    assert resume.position.parts == (Position("e0", 10), Position("e1", 25), Position("e2", 30))
    trail = SendTrail(3, window=2)
    for offset in range(11, 20):
        trail.record(rec(0, offset))
    # older than the window: placed by the log alone
    old = resume_position(START, saved(trail), "p0-12", (0, Position("e0", 12)))
    assert old is not None and not old.exact and old.position.parts[0] == Position("e0", 12)
    assert resume_position(START, saved(trail), "nope", None) is None


def test_folding_keeps_the_last_position_of_each_partition() -> None:
    """The fold reads newest first and stops early: the same base as folding every event in order,
    with local events, partitions absent from a fold and out-of-range partitions mixed in."""
    rng = random.Random(5)
    for _ in range(50):
        trail, base = SendTrail(3, window=3), [None, None, None]
        kept: list[BrokerEvent] = []
        for offset in range(rng.randrange(1, 40)):
            kind = rng.random()
            record = (BrokerEvent({"id": f"l{offset}"}, 0, LOCAL_EPOCH, 0) if kind < 0.1
                      else rec(7, offset) if kind < 0.15 else rec(rng.choice((0, 0, 0, 2)), offset))
            trail.record(record)
            kept.append(record)
        folded = kept[:max(0, len(kept) - 3)]  # what to_json folds: all but the window
        for record in folded:
            if record.epoch != LOCAL_EPOCH and record.partition < 3:
                base[record.partition] = [record.epoch, record.offset]  # type: ignore[call-overload]
        assert saved(trail)["base"] == base


def test_a_connection_takes_over_the_workers_order_for_its_live_events() -> None:
    """The worker's trail holds every live event once; a connection absorbs it from
    the number it went live at (what it was sent live, plus events it did not
    match, which place it the same way)."""
    worker = SendTrail(3, window=4)
    conn = SendTrail(3)
    worker.record(rec(0, 11))  # before the connection went live
    live_from = worker.count
    for record in (rec(1, 21), rec(0, 12), rec(2, 31)):
        worker.record(record)
    conn.absorb_since(worker, live_from)
    resume = resume_position(START, saved(conn), "p0-12", (0, Position("e0", 12)))
    assert resume is not None and resume.exact
    assert resume.position.parts == (Position("e0", 12), Position("e1", 21), Position("e2", 30))
    # entries the worker already folded away come from its base: never behind
    late = SendTrail(3)
    for offset in range(13, 30):
        worker.record(rec(0, offset))
    late.absorb_since(worker, live_from)
    kept = saved(late)
    assert kept["base"][0] is not None and kept["base"][1] == ["e1", 21]  # type: ignore[index]
