"""Hysteresis: one alert per excursion, however the reading hovers."""

from __future__ import annotations

import pytest

from autosdlc_ws.sources.alerts import RateWindow, ThresholdRule


def test_fires_once_and_resolves_below_clear_threshold() -> None:
    rule = ThresholdRule("memory", fire_at=100, clear_at=80)
    readings = [50, 101, 99, 101, 95, 85, 81, 79, 90, 100]
    transitions = [(i, t.fired) for i, v in enumerate(readings) if (t := rule.observe(v, float(i)))]
    assert transitions == [(1, True), (7, False), (9, True)]


def test_hold_time_ignores_short_spikes() -> None:
    rule = ThresholdRule("errors", fire_at=10, clear_at=5, hold_s=3)
    assert rule.observe(20, 0.0) is None
    assert rule.observe(2, 1.0) is None  # spike over before the hold time
    assert rule.observe(20, 2.0) is None
    assert rule.observe(20, 4.0) is None
    fired = rule.observe(20, 5.0)
    assert fired is not None and fired.fired and fired.threshold == 10


def test_clear_above_fire_is_refused() -> None:
    with pytest.raises(ValueError):
        ThresholdRule("x", fire_at=1, clear_at=2)


def test_rate_window_per_minute() -> None:
    window = RateWindow()
    assert window.rate_per_min(0, 0.0) == 0.0
    assert window.rate_per_min(30, 30.0) == pytest.approx(60.0)
    assert window.rate_per_min(30, 60.0) == 0.0
