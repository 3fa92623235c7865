"""The table of the gateway against each other server: paired ratios from plain session dicts."""

from __future__ import annotations

from typing import Any

from autosdlc_ws.bench.report import peer_table


def _session(target: str, repeat: int, per_s: float, per_cpu: float, p99: float) -> dict[str, Any]:
    def phase(label: str, batch: int, rate: float | None) -> dict[str, Any]:
        return {"label": label, "batch": batch, "rate_requested": rate, "deliveries_per_s": per_s,
                "deliveries_per_server_cpu_s": per_cpu, "latency_ms": {"p99": p99}}

    return {"target": target, "n": 1000, "repeat": repeat,
            "phases": [phase("burst b=1", 1, None), phase("rate 50000/s", 1, 50_000.0)]}


def test_each_peer_gets_a_column_of_paired_ratios() -> None:
    sessions = [
        _session("gateway", 0, 100.0, 400.0, 2.0), _session("node-socketio", 0, 50.0, 100.0, 4.0),
        _session("gateway", 1, 90.0, 300.0, 3.0), _session("node-socketio", 1, 90.0, 100.0, 1.0),
        _session("bare-picows", 0, 200.0, 800.0, 1.0),  # no pair in repeat 1: one ratio only
    ]
    lines = peer_table(sessions).splitlines()
    assert lines[0] == "| load | N | gateway vs bare-picows | gateway vs node-socketio |"
    burst, rate = lines[2], lines[3]
    assert burst == ("| burst, 1 event/tick | 1,000 | 0.50x; per CPU-s 0.50x "
                     "| 1.50x (1.00x-2.00x); per CPU-s 3.50x (3.00x-4.00x) |")
    # at a fixed rate deliveries/s is the rate asked for: p99 is compared instead
    assert rate == ("| 50k deliveries/s | 1,000 | p99 2.00x; per CPU-s 0.50x "
                    "| p99 1.75x (0.50x-3.00x); per CPU-s 3.50x (3.00x-4.00x) |")


def test_no_table_without_the_gateway_or_a_peer() -> None:
    assert peer_table([_session("gateway", 0, 1.0, 1.0, 1.0)]) == ""
    assert peer_table([_session("node-socketio", 0, 1.0, 1.0, 1.0)]) == ""
