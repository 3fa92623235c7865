"""`core.refill`: when a replacement worker has caught up with its siblings."""

from __future__ import annotations

from autosdlc_ws.core.refill import MAX_STEER_S, refilled


def test_a_replacement_steers_until_it_holds_as_many_as_its_least_loaded_sibling() -> None:
    assert not refilled(0.0, 0, [2_500])
    assert not refilled(3.0, 2_399, [2_400, 2_600])
    assert refilled(3.0, 2_400, [2_400, 2_600])
    assert refilled(0.0, 0, [0])  # an idle deployment: nothing to take back


def test_without_reports_it_waits_but_never_past_the_limit() -> None:
    assert not refilled(5.0, 100, [])  # no sibling has reported yet
    assert refilled(MAX_STEER_S, 100, [])
    assert refilled(MAX_STEER_S, 0, [5_000])  # clients that never come back must not pin the port
