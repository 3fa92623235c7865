"""The newest events a worker delivered, kept in memory to answer resumes.

A resume asks for every event after the client's position: with Redis that
was one `XRANGE` of the whole log range, every entry parsed again, for each
resuming client, although the worker's live reader had parsed the same
events moments before. In a resume storm (hundreds of clients back at once,
each a few seconds behind) that was most of the storm's CPU and its peak of
short-lived objects. The reader keeps its last `capacity` events here, with
no gap, so `between` answers a recent range with the very objects already
delivered; anything older (or across a gap) is `None`, and the caller reads
Redis as before.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from autosdlc_ws.broker.base import BrokerEvent


class RecentEvents:
    """A run of consecutive offsets of one epoch, at most `capacity` long (0: keeps nothing)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
        self._events: deque[BrokerEvent] = deque(maxlen=self.capacity or 1)
        self._epoch: str | None = None

    def __len__(self) -> int:
        return len(self._events)

    @property
    def first_offset(self) -> int | None:
        return self._events[0].offset if self._events else None

    def add(self, record: BrokerEvent) -> None:
        """Keep `record`; one that does not follow the last kept (a gap, a new epoch) starts a new run."""
        if not self.capacity:
            return
        events = self._events
        if events and (record.epoch != self._epoch or record.offset != events[-1].offset + 1):
            events.clear()
        self._epoch = record.epoch
        events.append(record)  # the deque's maxlen drops the oldest

    def clear(self) -> None:
        self._events.clear()
        self._epoch = None

    def between(self, epoch: str, first: int, last: int) -> list[BrokerEvent] | None:
        """Offsets `first`..`last` of `epoch`, all of them, or None when they are not all here."""
        if last < first:
            return []
        events = self._events
        if not events or epoch != self._epoch:
            return None
        start = events[0].offset
        if first < start or last > events[-1].offset:
            return None
        return list(islice(events, first - start, last - start + 1))
