"""The recent events a worker keeps for resumes: a gap-free run of one epoch, bounded."""

from __future__ import annotations

from autosdlc_ws.broker.base import BrokerEvent
from autosdlc_ws.broker.recent_events import RecentEvents


def rec(offset: int, epoch: str = "e1") -> BrokerEvent:
    return BrokerEvent({"id": f"{epoch}-{offset}"}, offset, epoch)


def offsets(events: list[BrokerEvent] | None) -> list[int] | None:
    return None if events is None else [e.offset for e in events]


def test_a_range_inside_the_run_is_answered_with_the_kept_objects() -> None:
    recent = RecentEvents(10)
    kept = [rec(n) for n in range(5, 10)]
    for record in kept:
        recent.add(record)
    got = recent.between("e1", 6, 8)
    assert offsets(got) == [6, 7, 8]
    assert got is not None and got[0] is kept[1]  # the delivered objects, not copies
    assert offsets(recent.between("e1", 5, 9)) == [5, 6, 7, 8, 9]
    assert recent.between("e1", 9, 8) == []  # nothing missed


def test_a_range_reaching_outside_the_run_is_not_answered() -> None:
    recent = RecentEvents(10)
    for n in range(5, 10):
        recent.add(rec(n))
    assert recent.between("e1", 4, 8) is None  # older than the first kept
    assert recent.between("e1", 6, 10) is None  # not delivered yet
    assert recent.between("e2", 6, 8) is None  # another epoch


def test_the_oldest_go_past_capacity() -> None:
    recent = RecentEvents(3)
    for n in range(1, 8):
        recent.add(rec(n))
    assert len(recent) == 3 and recent.first_offset == 5
    assert recent.between("e1", 4, 7) is None
    assert offsets(recent.between("e1", 5, 7)) == [5, 6, 7]


def test_a_gap_or_a_new_epoch_starts_a_new_run() -> None:
    recent = RecentEvents(10)
    for n in (1, 2, 3):
        recent.add(rec(n))
    recent.add(rec(6))  # 4 and 5 were lost before delivery: never answer across them
    assert recent.first_offset == 6 and recent.between("e1", 3, 6) is None
    assert offsets(recent.between("e1", 6, 6)) == [6]
    recent.add(rec(1, "e2"))
    assert recent.between("e1", 6, 6) is None
    assert offsets(recent.between("e2", 1, 1)) == [1]


def test_clear_and_zero_capacity_keep_nothing() -> None:
    recent = RecentEvents(10)
    recent.add(rec(1))
    recent.clear()
    assert len(recent) == 0 and recent.between("e1", 1, 1) is None
    off = RecentEvents(0)
    off.add(rec(1))
    assert len(off) == 0 and off.between("e1", 1, 1) is None
