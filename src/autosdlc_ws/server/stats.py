"""Plain counters on the hot path, turned into Prometheus metrics only at scrape time.

Incrementing an attribute or a `Counter` entry costs a fraction of a
prometheus_client labelled metric (a lock and a label lookup per call); the
collector reads these fields when `/metrics` is scraped.

Several workers: each worker writes a snapshot of its figures to
`AUTOSDLC_WS_STATS_DIR/<pid>.json` every second (the multi-worker parent sets
the directory), and whichever worker answers a scrape sums the counters and
histograms of all live snapshots; gauges that are per worker (connections,
memory) are summed too, so `/metrics` describes the whole server whatever
worker the load balancer picks.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from autosdlc_ws.core.subscription_counts import top_counts

SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STALE_AFTER_S = 10.0
#: A sibling's connection count older than this says little about now (snapshots come every second).
SIBLING_FRESH_S = 3.0


@dataclass(slots=True)
class Histogram:
    """Bucket counts without locks; `observe` is a bisect and two additions."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "sum": self.total}


@dataclass(slots=True)
class GatewayStats:
    connections_opened: Counter[str] = field(default_factory=Counter)  # by auth kind
    messages_received: Counter[str] = field(default_factory=Counter)  # by type
    events_sent: Counter[str] = field(default_factory=Counter)  # event deliveries by type
    messages_sent: int = 0  # frames written to clients (events + control)
    bytes_sent: int = 0
    bytes_received: int = 0
    events_published: int = 0
    events_delivered: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # error frames by code
    slow_consumer_disconnects: int = 0
    rate_limited: int = 0
    rate_limited_by_type: Counter[str] = field(default_factory=Counter)  # configured types + "other"
    unknown_values: Counter[str] = field(default_factory=Counter)  # by open field (core.open_values)
    webhooks: Counter[str] = field(default_factory=Counter)  # github deliveries by outcome
    received_size: Histogram = field(default_factory=lambda: Histogram(SIZE_BUCKETS))
    event_size: Histogram = field(default_factory=lambda: Histogram(SIZE_BUCKETS))
    fanout_latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    broker_up: float = 1.0
    broker_rtt_s: float = 0.0

    def snapshot(self, gauges: dict[str, float]) -> dict[str, Any]:
        return {
            "time": time.time(),
            "counters": {
                "messages_sent": self.messages_sent, "bytes_sent": self.bytes_sent,
                "bytes_received": self.bytes_received, "events_published": self.events_published,
                "events_delivered": self.events_delivered,
                "slow_consumer_disconnects": self.slow_consumer_disconnects,
                "rate_limited": self.rate_limited,
            },
            "labelled": {
                "connections_opened": dict(self.connections_opened),
                "messages_received": dict(self.messages_received),
                "events_sent": dict(self.events_sent),
                "errors": dict(self.errors),
                "webhooks": dict(self.webhooks),
                "rate_limited_by_type": dict(self.rate_limited_by_type),
                "unknown_values": dict(self.unknown_values),
            },
            "histograms": {"received_size": self.received_size.to_json(),
                           "event_size": self.event_size.to_json(),
                           "fanout_latency": self.fanout_latency.to_json()},
            "gauges": {**gauges, "broker_up": self.broker_up, "broker_rtt_seconds": self.broker_rtt_s},
        }


COUNTER_DOCS = {
    "messages_sent": "Frames written to clients (events and control)",
    "bytes_sent": "Bytes of frames written to clients",
    "bytes_received": "Bytes of client frames received",
    "events_published": "Events accepted by the broker from this server",
    "events_delivered": "Event deliveries queued to connections",
    "slow_consumer_disconnects": "Connections closed with 4008 (slow consumer)",
    "rate_limited": "Requests refused by a rate limit",
}
LABELLED_DOCS = {
    "connections_opened": ("auth", "Connections opened, by auth kind"),
    "messages_received": ("type", "Client messages received, by type"),
    "events_sent": ("type", "Event deliveries to clients, by type"),
    "errors": ("code", "Error frames sent, by code"),
    "webhooks": ("outcome", "GitHub webhook deliveries, by outcome"),
    "rate_limited_by_type": ("type", "Messages refused by a rate limit, by type (types in rate_limits, else other)"),
    "unknown_values": ("field", "Published values of open fields beyond the documented ones, by field"),
}
HISTOGRAM_DOCS = {
    "received_size": (SIZE_BUCKETS, "received_message_size_bytes", "Size of client frames"),
    "event_size": (SIZE_BUCKETS, "event_size_bytes", "Encoded size of fanned-out events"),
    "fanout_latency": (LATENCY_BUCKETS, "fanout_latency_seconds",
                       "From an event reaching the worker to its frames being written to every recipient"),
}
#: Labelled gauge families ("family:label" gauge names) whose label is not `kind`.
GAUGE_LABELS = {"subscribers_by_resource": "resource", "subscribers_by_type": "type"}
#: `subscribers_by_resource` keeps this many resources (the most subscribed) and sums
#: the rest under `resource="other"`, per worker and again after merging workers, so
#: the series count stays bounded whatever ids clients subscribe to. Types need no
#: bound: there are as many as the schema has.
SUBSCRIBER_RESOURCES_TOP = 20
MAX_GAUGES = {"broker_up"}  # merged with min() instead of sum(): any worker down is down


def merge_snapshots(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"counters": Counter(), "labelled": {}, "histograms": {}, "gauges": {}}
    for snap in snapshots:
        merged["counters"].update(snap["counters"])
        for name, values in snap["labelled"].items():
            merged["labelled"].setdefault(name, Counter()).update(values)
        for name, hist in snap["histograms"].items():
            into = merged["histograms"].setdefault(name, {"counts": [0] * len(hist["counts"]), "sum": 0.0})
            into["counts"] = [a + b for a, b in zip(into["counts"], hist["counts"], strict=True)]
            into["sum"] += hist["sum"]
        for name, value in snap["gauges"].items():
            if name in MAX_GAUGES:
                merged["gauges"][name] = min(merged["gauges"].get(name, value), value)
            elif name == "broker_rtt_seconds":
                merged["gauges"][name] = max(merged["gauges"].get(name, 0.0), value)
            else:
                merged["gauges"][name] = merged["gauges"].get(name, 0.0) + value
    merged["gauges"]["workers"] = float(len(snapshots))
    return merged


class StatsCollector(Collector):
    def __init__(self, stats: GatewayStats, gauges: Callable[[], dict[str, float]],
                 shared_dir: str | None = None) -> None:
        self._stats = stats
        self._gauges = gauges
        self._shared_dir = Path(shared_dir) if shared_dir else None

    def local_snapshot(self) -> dict[str, Any]:
        return self._stats.snapshot(self._gauges())

    def write_snapshot(self) -> None:
        """Publish this worker's figures for its siblings (atomic rename)."""
        if self._shared_dir is None:
            return
        target = self._shared_dir / f"{os.getpid()}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.local_snapshot()))
        tmp.replace(target)

    def _sibling_snapshots(self, max_age_s: float) -> Iterator[tuple[int, dict[str, Any]]]:
        """(pid, snapshot) of each sibling that wrote within `max_age_s`. A snapshot older than
        `STALE_AFTER_S` whose process is gone is deleted, so a long-lived deployment's directory
        does not fill with the snapshots of workers that died."""
        if self._shared_dir is None:
            return
        now = time.time()
        own = str(os.getpid())
        for path in self._shared_dir.glob("*.json"):
            if path.stem == own or not path.stem.isdigit():
                continue
            try:
                snap = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            age = now - snap.get("time", 0)
            if age < max_age_s:
                yield int(path.stem), snap
            elif age >= STALE_AFTER_S and not _alive(int(path.stem)):
                path.unlink(missing_ok=True)

    def sibling_connection_counts(self) -> list[int]:
        """Open connections of each live sibling worker that wrote in the last seconds."""
        return [int(snap.get("gauges", {}).get("connections_active", 0))
                for pid, snap in self._sibling_snapshots(SIBLING_FRESH_S) if _alive(pid)]

    def _snapshots(self) -> list[dict[str, Any]]:
        return [self.local_snapshot(), *(snap for _, snap in self._sibling_snapshots(STALE_AFTER_S))]

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        merged = merge_snapshots(self._snapshots())
        for name, doc in COUNTER_DOCS.items():
            yield CounterMetricFamily(f"autosdlc_ws_{name}", doc, value=merged["counters"].get(name, 0))
        for name, (label, doc) in LABELLED_DOCS.items():
            family = CounterMetricFamily(f"autosdlc_ws_{name}", doc, labels=[label])
            for key, value in sorted(merged["labelled"].get(name, {}).items()):
                family.add_metric([key], value)
            yield family
        for name, (bounds, metric, doc) in HISTOGRAM_DOCS.items():
            hist = merged["histograms"].get(name)
            if hist is None:
                continue
            cumulative, buckets = 0, []
            for bound, count in zip([*map(str, bounds), "+Inf"], hist["counts"], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            yield HistogramMetricFamily(f"autosdlc_ws_{metric}", doc, buckets=buckets, sum_value=hist["sum"])
        labelled_rows: dict[str, dict[str, float]] = {}
        for name, value in sorted(merged["gauges"].items()):
            if ":" in name:  # "family:label" -> one family with a label (`kind` unless named)
                family_name, label = name.split(":", 1)
                labelled_rows.setdefault(family_name, {})[label] = value
                continue
            yield GaugeMetricFamily(f"autosdlc_ws_{name}", name.replace("_", " "), value=value)
        for family_name, rows in labelled_rows.items():
            if family_name == "subscribers_by_resource":
                rows = {k: float(v) for k, v in top_counts({k: int(v) for k, v in rows.items()},
                                                           SUBSCRIBER_RESOURCES_TOP).items()}
            gauge = GaugeMetricFamily(f"autosdlc_ws_{family_name}", family_name.replace("_", " "),
                                      labels=[GAUGE_LABELS.get(family_name, "kind")])
            for label, value in sorted(rows.items()):
                gauge.add_metric([label], value)
            yield gauge


def _alive(pid: int) -> bool:
    """A sibling that has died but is not reaped yet (a zombie) is not alive: its last
    snapshot still says how many connections it held."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
