from __future__ import annotations

from autosdlc_ws.core.error_groups import ErrorAggregator


def test_groups_by_code_and_type_with_counts() -> None:
    agg = ErrorAggregator(alert_per_min=100)
    for i in range(3):
        agg.record("invalid_message", "agent_status", f"bad {i}", now_ms=1000 + i, now_s=float(i))
    agg.record("unknown_type", "unknown", "what", now_ms=5000, now_s=5.0)
    snap = agg.snapshot(6.0)
    assert [(g["code"], g["messageType"], g["count"]) for g in snap] == [
        ("unknown_type", "unknown", 1), ("invalid_message", "agent_status", 3)]
    assert snap[1]["firstAt"] == 1000 and snap[1]["lastAt"] == 1002 and snap[1]["lastMessage"] == "bad 2"


def test_alert_once_per_crossing_and_rearm() -> None:
    agg = ErrorAggregator(alert_per_min=5)
    alerts = [agg.record("rate_limited", "ping", "x", now_ms=0, now_s=i * 0.1) for i in range(20)]
    assert sum(a is not None for a in alerts) == 1
    assert alerts[4] is not None  # the fifth error in a minute crosses the threshold
    # a minute later the rate has fallen: the next error re-arms, a new burst alerts again
    assert agg.record("rate_limited", "ping", "x", now_ms=0, now_s=200.0) is None
    again = [agg.record("rate_limited", "ping", "x", now_ms=0, now_s=200.0 + i * 0.1) for i in range(5)]
    assert sum(a is not None for a in again) == 1


def test_group_count_is_bounded() -> None:
    agg = ErrorAggregator(alert_per_min=0, max_groups=3)
    for i in range(10):
        agg.record("invalid_message", f"type{i}", "x", now_ms=i, now_s=float(i))
    assert len(agg.snapshot(10.0)) == 4  # three named groups + one "other"
