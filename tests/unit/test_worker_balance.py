"""Steering the clients of a dead worker, with plain values."""

from __future__ import annotations

from autosdlc_ws.core.worker_balance import FRESH_DEATH_S, MARGIN, RECOVERY_S, Rebalancer


def test_after_a_sibling_dies_the_survivor_keeps_to_its_share_until_the_replacement_fills() -> None:
    r = Rebalancer(workers=2)
    r.observe(0.0, 2_650, {11: 2_600}, {})
    assert not r.turn_away(0.5, 2_700)  # nobody died: never
    r.observe(1.0, 2_650, {}, {11: (2_600, 0.4)})  # worker 11 died; its replacement is not up yet
    assert r.share == (2_650 + 2_600) / 2
    assert not r.turn_away(1.2, 2_900)  # no live sibling to send them to
    r.observe(2.0, 2_700, {12: 40}, {11: (2_600, 1.4)})  # the replacement listens
    assert not r.turn_away(2.1, 2_700)  # within the margin of its share: it takes more
    assert r.turn_away(2.1, int(r.share * (1 + MARGIN)) + 1)
    r.observe(3.0, 2_760, {12: 1_900}, {11: (2_600, 2.4)})
    assert r.turn_away(3.1, 2_760)
    r.observe(4.0, 2_760, {12: 2_625}, {11: (2_600, 3.4)})  # the replacement has its share
    assert not r.turn_away(4.1, 2_760)
    r.observe(5.0, 2_760, {12: 2_000}, {11: (2_600, 4.4)})  # churn moves some back: the same death
    assert not r.turn_away(5.1, 2_760)  # is not noticed twice


def test_steering_ends_after_the_recovery_window() -> None:
    r = Rebalancer(workers=2)
    r.observe(0.0, 3_000, {12: 0}, {11: (3_000, 0.5)})
    assert r.turn_away(1.0, 3_200)
    r.observe(RECOVERY_S + 1, 3_200, {12: 500}, {11: (3_000, RECOVERY_S)})
    assert not r.turn_away(RECOVERY_S + 1.5, 3_200)


def test_start_up_ramps_and_old_deaths_never_turn_anyone_away() -> None:
    r = Rebalancer(workers=2)
    r.observe(0.0, 600, {12: 0}, {})  # a ramp: the sibling's count is a second old
    assert not r.turn_away(0.5, 900)
    r.observe(1.0, 900, {12: 300}, {9: (2_000, FRESH_DEATH_S + 1)})  # a death long before this worker
    assert not r.turn_away(1.5, 1_200)


def test_a_replacement_seeing_its_predecessors_death_never_turns_anyone_away() -> None:
    r = Rebalancer(workers=2)
    r.observe(0.0, 0, {12: 2_650}, {11: (2_600, 0.3)})
    assert not r.turn_away(0.5, 10)
    assert not r.turn_away(0.5, 2_000)  # under its share (2,625): it takes them


def test_with_three_workers_the_share_counts_every_worker() -> None:
    r = Rebalancer(workers=3)
    r.observe(0.0, 2_000, {12: 2_000, 13: 0}, {11: (2_000, 0.2)})
    assert r.share == 2_000
    assert r.turn_away(0.5, 2_100)
    assert not r.turn_away(0.5, 2_099)
