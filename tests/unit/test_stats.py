"""Metrics: plain counters rendered at scrape time, merged across worker snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from autosdlc_ws.server.stats import GatewayStats, Histogram, StatsCollector, merge_snapshots


def _render(collector: StatsCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_histogram_buckets() -> None:
    hist = Histogram((1.0, 10.0))
    for value in (0.5, 1.0, 5, 50):
        hist.observe(value)
    assert hist.counts == [2, 1, 1] and hist.total == 56.5


def test_rendered_names_and_labels() -> None:
    stats = GatewayStats()
    stats.errors["forbidden"] += 2
    stats.events_sent["agent_status"] += 7
    stats.fanout_latency.observe(0.003)
    text = _render(StatsCollector(stats, lambda: {"connections_active": 3, "subscriptions_by_kind:agent": 2}))
    assert 'autosdlc_ws_errors_total{code="forbidden"} 2.0' in text
    assert 'autosdlc_ws_events_sent_total{type="agent_status"} 7.0' in text
    assert 'autosdlc_ws_fanout_latency_seconds_bucket{le="0.005"} 1.0' in text
    assert "autosdlc_ws_connections_active 3.0" in text
    assert 'autosdlc_ws_subscriptions_by_kind{kind="agent"} 2.0' in text


def test_merge_sums_counters_and_keeps_worst_broker_state() -> None:
    a, b = GatewayStats(), GatewayStats()
    a.events_delivered, b.events_delivered = 10, 5
    a.errors["invalid_json"], b.errors["invalid_json"] = 1, 2
    b.broker_up = 0.0
    merged = merge_snapshots([a.snapshot({"connections_active": 2}), b.snapshot({"connections_active": 3})])
    assert merged["counters"]["events_delivered"] == 15
    assert merged["labelled"]["errors"]["invalid_json"] == 3
    assert merged["gauges"]["connections_active"] == 5 and merged["gauges"]["broker_up"] == 0.0
    assert merged["gauges"]["workers"] == 2


def test_shared_dir_snapshots_from_siblings(tmp_path: Path) -> None:
    sibling = GatewayStats()
    sibling.events_delivered = 40
    (tmp_path / "99999999.json").write_text(json.dumps(sibling.snapshot({"connections_active": 4})))
    stale = GatewayStats()
    stale.events_delivered = 1000
    snap = stale.snapshot({})
    snap["time"] = time.time() - 60
    (tmp_path / "99999998.json").write_text(json.dumps(snap))
    own = GatewayStats()
    own.events_delivered = 2
    collector = StatsCollector(own, lambda: {"connections_active": 1}, str(tmp_path))
    text = _render(collector)
    assert "autosdlc_ws_events_delivered_total 42.0" in text
    assert "autosdlc_ws_connections_active 5.0" in text
    collector.write_snapshot()
    assert json.loads((tmp_path / f"{os.getpid()}.json").read_text())["counters"]["events_delivered"] == 2


def test_subscriber_counts_keep_a_bounded_resource_label_across_workers() -> None:
    from autosdlc_ws.server.stats import SUBSCRIBER_RESOURCES_TOP

    # Two workers, each already bounded, together name more resources than the bound.
    worker_a = {f"subscribers_by_resource:agent:a{i}": 1.0 for i in range(SUBSCRIBER_RESOURCES_TOP)}
    worker_b = {f"subscribers_by_resource:agent:b{i}": 1.0 for i in range(SUBSCRIBER_RESOURCES_TOP)}
    worker_b["subscribers_by_resource:agent:a0"] = 5.0
    worker_b["subscribers_by_type:agent_status"] = 2.0

    class Merged(StatsCollector):
        def _snapshots(self) -> list[dict[str, object]]:
            return [GatewayStats().snapshot(worker_a), GatewayStats().snapshot(worker_b)]

    text = _render(Merged(GatewayStats(), dict))
    rows = [line for line in text.splitlines() if line.startswith("autosdlc_ws_subscribers_by_resource{")]
    assert len(rows) == SUBSCRIBER_RESOURCES_TOP + 1
    assert 'autosdlc_ws_subscribers_by_resource{resource="agent:a0"} 6.0' in rows
    total = sum(float(r.rsplit(" ", 1)[1]) for r in rows)
    assert total == 2 * SUBSCRIBER_RESOURCES_TOP + 5  # nothing lost: the rest is under "other"
    assert any(r.startswith('autosdlc_ws_subscribers_by_resource{resource="other"}') for r in rows)
    assert 'autosdlc_ws_subscribers_by_type{type="agent_status"} 2.0' in text


def test_sibling_counts_come_from_live_fresh_snapshots_and_dead_ones_are_swept(tmp_path: Path) -> None:
    def write(pid: int, connections: int, age_s: float = 0.0) -> Path:
        snap = GatewayStats().snapshot({"connections_active": connections})
        snap["time"] = time.time() - age_s
        path = tmp_path / f"{pid}.json"
        path.write_text(json.dumps(snap))
        return path

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    long_dead = subprocess.Popen([sys.executable, "-c", "pass"])
    long_dead.wait()
    quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    unreaped = subprocess.Popen([sys.executable, "-c", "pass"])  # dies; nobody waits: a zombie
    deadline = time.monotonic() + 10
    while Path(f"/proc/{unreaped.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        write(unreaped.pid, 2_400)  # killed a moment ago, not reaped yet: not live
        write(os.getppid(), 1_200)  # a live sibling
        write(os.getpid(), 2_500)  # this worker's own: not a sibling
        just_killed = write(dead.pid, 2_600, age_s=0.5)  # a killed worker's last snapshot: not live
        old = write(long_dead.pid, 700, age_s=60.0)  # died long ago
        quiet_file = write(quiet.pid, 900, age_s=20.0)  # alive, not reporting
        (tmp_path / "notes.json").write_text("{}")
        (tmp_path / "123.tmp").write_text("half")
        collector = StatsCollector(GatewayStats(), dict, str(tmp_path))
        assert collector.sibling_connection_counts() == [1_200]
        assert not old.exists()  # swept: its process is gone and it is stale
        assert just_killed.exists() and quiet_file.exists()  # fresh, or its process still runs
    finally:
        quiet.kill()
        quiet.wait()
        unreaped.wait()
