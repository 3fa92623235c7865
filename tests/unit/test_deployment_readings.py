"""The monitor's deployment-wide readings, from plain node figures."""

from __future__ import annotations

import pytest

from autosdlc_ws.broker.control import NodeInfo
from autosdlc_ws.server.deployment_readings import DeploymentReadings, NodeFigures, merge_own


def figures(node: str, connections: int, errors: float, memory_mb: float) -> NodeFigures:
    return NodeFigures(node, connections, errors, memory_mb * 1e6)


def test_sums_connections_and_error_rates_and_takes_the_largest_memory() -> None:
    readings = DeploymentReadings()
    first = readings.read([figures("a", 3, 10, 100), figures("b", 4, 50, 300)], 0.0)
    assert first == {"error_rate": 0.0, "connections": 7.0, "memory": 300.0}
    later = readings.read([figures("a", 3, 40, 100), figures("b", 4, 80, 200)], 30.0)
    assert later["error_rate"] == pytest.approx(120.0)  # (30 + 30) errors in half a minute
    assert later["memory"] == 200.0


def test_a_node_leaving_or_joining_does_not_look_like_an_error_burst() -> None:
    readings = DeploymentReadings()
    readings.read([figures("a", 1, 1000, 1), figures("b", 1, 5000, 1)], 0.0)
    assert readings.read([figures("a", 1, 1000, 1)], 60.0)["error_rate"] == 0.0  # b gone
    joined = readings.read([figures("a", 1, 1000, 1), figures("c", 1, 9000, 1)], 120.0)
    assert joined["error_rate"] == 0.0  # c's counter is new to us: no rate yet
    assert readings.read([], 180.0) == {"error_rate": 0.0, "connections": 0.0, "memory": 0.0}


def test_own_live_figures_replace_own_registry_entry() -> None:
    entries = [NodeInfo("a", "h", 1, 0, 0, "v", 9, {"errors_total": 99.0, "memory_rss_bytes": 5.0}),
               NodeInfo("b", "h", 2, 0, 0, "v", 2, {"errors_total": 3.0, "memory_rss_bytes": 7.0})]
    merged = merge_own(figures("a", 1, 0, 0), entries)
    assert merged == [figures("a", 1, 0, 0), NodeFigures("b", 2, 3.0, 7.0)]
