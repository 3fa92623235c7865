"""The soak run's publisher: events numbered per resource, at a steady rate, in order.

Each event is an `agent_log` of one resource (`agentId`) carrying the run id and
that resource's next sequence number, so every client can tell a lost, a
duplicated or a late event from its numbers alone (`soak_verdict.SeqTracker`).
Publishing goes through the SDK's HTTP `Publisher`, retries included, as a
backend service would publish.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from autosdlc_ws.bench.protocol import EVENT_TYPE, log_text
from autosdlc_ws.client import Publisher
from autosdlc_ws.client.errors import AutoSDLCError


class SeqPublisher:
    """`rate` events/s, round-robin over the resources, numbered per resource, in order
    (one request at a time; what falls behind during an outage is sent in one go after)."""

    def __init__(self, publisher: Publisher, run_id: str, resources: list[str], rate: float) -> None:
        self.publisher = publisher
        self.run_id = run_id
        self.resources = resources
        self.rate = rate
        self.next_seq = dict.fromkeys(resources, 0)
        self.published = 0
        self.failed = 0
        self.failures: list[str] = []
        self._k = 0
        self._message = log_text(200)

    def final_seqs(self) -> dict[str, int]:
        return {r: n - 1 for r, n in self.next_seq.items() if n > 0}

    def _events(self, count: int) -> list[dict[str, Any]]:
        events = []
        for _ in range(count):
            resource = self.resources[self._k % len(self.resources)]
            self._k += 1
            seq = self.next_seq[resource]
            self.next_seq[resource] = seq + 1
            events.append({"type": EVENT_TYPE, "data": {"agentId": resource, "level": "info",
                                                        "message": self._message, "run": self.run_id,
                                                        "seq": seq}})
        return events

    async def run(self, duration: float, tick: float = 0.05) -> None:
        t0 = time.monotonic()
        while (now := time.monotonic()) - t0 < duration:
            due = min(1000, int((now - t0) * self.rate) - self.published - self.failed)
            if due <= 0:
                await asyncio.sleep(tick)
                continue
            events = self._events(due)
            try:
                await self.publisher.publish_many(events)
                self.published += due
            except AutoSDLCError as exc:  # given up after every retry: the clients will see a gap
                self.failed += due
                if len(self.failures) < 10:
                    self.failures.append(f"t={now - t0:.1f}: {exc}")
