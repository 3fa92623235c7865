"""Local fan-out: broker events to the matching connections of this worker.

Each event is encoded once (`EncodedEvent`) and its frame bytes handed to every
recipient's queue; nothing here awaits, so one slow client cannot slow the
others (it is closed when its own queue overflows).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from autosdlc_ws.broker.base import BrokerEvent
from autosdlc_ws.core.envelope import EncodedEvent
from autosdlc_ws.core.subscriptions import SubscriptionIndex
from autosdlc_ws.server.logs import MessageLog
from autosdlc_ws.server.stats import GatewayStats

if TYPE_CHECKING:
    from autosdlc_ws.server.connection import Connection


class Hub:
    def __init__(self, *, gzip_threshold: int, stats: GatewayStats | None,
                 message_log: MessageLog | None = None) -> None:
        self.index: SubscriptionIndex[Connection] = SubscriptionIndex()
        self.message_log = message_log or MessageLog()
        self._gzip_threshold = gzip_threshold
        #: Fan-out metrics (deliveries, sizes, latency); None records none, which is
        #: how benchmarks/bench_metrics.py measures what they cost on this very code.
        self.stats = stats

    def _observe_latency(self, started: float) -> None:
        if self.stats is not None:
            self.stats.fanout_latency.observe(time.perf_counter() - started)

    def on_broker_event(self, record: BrokerEvent) -> None:
        event = record.event
        data = event.get("data")
        if not isinstance(data, dict):
            return
        owners = self.index.match(event["type"], data)
        if not owners:
            return
        started = time.perf_counter()
        out = EncodedEvent(event, gzip_threshold=self._gzip_threshold)
        for conn in owners:
            conn.deliver(out, record)
        stats = self.stats
        if stats is not None:
            stats.events_delivered += len(owners)
            stats.events_sent[event["type"]] += len(owners)
            stats.event_size.observe(len(out.json))
            # Connections flush in callbacks scheduled during the loop above; this one
            # runs after them, so it measures encode + queue + write for all recipients.
            asyncio.get_running_loop().call_soon(self._observe_latency, started)
        if self.message_log.enabled:
            self.message_log.log("out", event, subject=None, connection_id=None, recipients=len(owners))
