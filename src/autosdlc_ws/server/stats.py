"""Plain counters on the hot path, turned into Prometheus metrics only at scrape time.

Incrementing an attribute costs a fraction of a prometheus_client labelled
counter (a lock and a label lookup); the collector reads these fields when
`/metrics` is scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass(slots=True)
class GatewayStats:
    connections_opened: Counter[str] = field(default_factory=Counter)  # by auth kind
    messages_received: Counter[str] = field(default_factory=Counter)  # by type
    messages_sent: int = 0  # frames written to clients (events + control)
    bytes_sent: int = 0
    bytes_received: int = 0
    events_published: int = 0
    events_delivered: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # error frames by code
    slow_consumer_disconnects: int = 0
    rate_limited: int = 0
    webhooks: Counter[str] = field(default_factory=Counter)  # github events by outcome


class StatsCollector(Collector):
    def __init__(self, stats: GatewayStats, gauges: Callable[[], dict[str, float]]) -> None:
        self._stats = stats
        self._gauges = gauges

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self._stats
        opened = CounterMetricFamily("autosdlc_ws_connections_opened", "Connections opened", labels=["auth"])
        for kind, n in s.connections_opened.items():
            opened.add_metric([kind], n)
        yield opened
        received = CounterMetricFamily("autosdlc_ws_messages_received", "Client messages by type", labels=["type"])
        for kind, n in s.messages_received.items():
            received.add_metric([kind], n)
        yield received
        errors = CounterMetricFamily("autosdlc_ws_errors", "Error frames sent, by code", labels=["code"])
        for code, n in s.errors.items():
            errors.add_metric([code], n)
        yield errors
        hooks = CounterMetricFamily("autosdlc_ws_webhooks", "GitHub webhook deliveries", labels=["outcome"])
        for outcome, n in s.webhooks.items():
            hooks.add_metric([outcome], n)
        yield hooks
        counters: tuple[tuple[str, int, str], ...] = (
            ("messages_sent", s.messages_sent, "Frames written to clients"),
            ("bytes_sent", s.bytes_sent, "Bytes of frames written to clients"),
            ("bytes_received", s.bytes_received, "Bytes of client frames received"),
            ("events_published", s.events_published, "Events accepted by the broker from this worker"),
            ("events_delivered", s.events_delivered, "Event deliveries queued to connections"),
            ("slow_consumer_disconnects", s.slow_consumer_disconnects, "Connections closed with 4008"),
            ("rate_limited", s.rate_limited, "Requests refused by a rate limit"),
        )
        for name, value, doc in counters:
            yield CounterMetricFamily(f"autosdlc_ws_{name}", doc, value=value)
        for gauge, reading in self._gauges().items():
            yield GaugeMetricFamily(f"autosdlc_ws_{gauge}", gauge.replace("_", " "), value=reading)
