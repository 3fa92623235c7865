"""The embedded broker: one process, zero setup, the default.

Publishing appends to a bounded in-memory log and hands the event to the
live handler in the same call, so offsets and delivery order are one thing
and a replay can never race a live event.

Shared limits are this process's own: slots are a set of holders per
identity (no lease: the process that holds them is the one that counts them,
and it cannot die without them), token buckets are `KeyedBuckets` on the
monotonic clock.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from autosdlc_ws.broker.base import (
    Broker,
    BrokerEvent,
    EventHandler,
    HistoryResult,
    Position,
    PublishReceipt,
    SessionRecord,
)
from autosdlc_ws.core.ratelimit import KeyedBuckets


class MemoryBroker(Broker):
    name = "memory"

    def __init__(
        self,
        *,
        max_events: int = 100_000,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch = os.urandom(6).hex()
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._clock = clock
        self._log: deque[tuple[float, BrokerEvent]] = deque()
        self._offsets: dict[str, int] = {}
        self._next_offset = 1
        self._handler: EventHandler | None = None
        self._sessions: OrderedDict[str, tuple[float, SessionRecord]] = OrderedDict()
        self._slots: dict[str, set[str]] = {}
        self._buckets: dict[tuple[float, float], KeyedBuckets] = {}

    async def start(self, on_event: EventHandler) -> None:
        self._handler = on_event

    async def close(self) -> None:
        self._handler = None

    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        receipts = []
        now = self._clock()
        for event in events:
            event_id = event["id"]
            known = self._offsets.get(event_id)
            if known is not None:
                receipts.append(PublishReceipt(event_id, known, True))
                continue
            offset = self._next_offset
            self._next_offset += 1
            record = BrokerEvent(event, offset, self.epoch)
            self._log.append((now, record))
            self._offsets[event_id] = offset
            receipts.append(PublishReceipt(event_id, offset, False))
            if self._handler is not None:
                self._handler(record)
        self._trim(now)
        return receipts

    def _trim(self, now: float) -> None:
        log = self._log
        oldest_allowed = now - self._max_age_s
        while log and (len(log) > self._max_events or log[0][0] < oldest_allowed):
            _, dropped = log.popleft()
            self._offsets.pop(dropped.event["id"], None)

    async def head(self) -> Position:
        return Position(self.epoch, self._next_offset - 1)

    async def history_after(
        self, *, position: Position | None = None, event_id: str | None = None, limit: int = 100_000
    ) -> HistoryResult:
        self._trim(self._clock())
        head = Position(self.epoch, self._next_offset - 1)
        if event_id is not None:
            offset = self._offsets.get(event_id)
            if offset is None:
                return HistoryResult(
                    [], False, "last event id is unknown or past the history retention", head)
        elif position is not None:
            if position.epoch != self.epoch:
                return HistoryResult([], False, "history was reset since this position", head)
            offset = position.offset
        else:
            raise ValueError("history_after needs a position or an event id")
        first_kept = self._log[0][1].offset if self._log else self._next_offset
        complete = offset + 1 >= first_kept
        start = max(0, offset + 1 - first_kept)
        events = [record for _, record in itertools.islice(self._log, start, start + limit)]
        reason = None if complete else "some missed events are past the history retention"
        if complete and start + limit < len(self._log):
            complete, reason = False, f"more than {limit} events were missed"
        return HistoryResult(events, complete, reason, head)

    async def ready(self) -> bool:
        return True

    async def save_session(self, record: SessionRecord, ttl_s: float) -> None:
        now = self._clock()
        self._sessions[record.session_id] = (now + ttl_s, record)
        self._sessions.move_to_end(record.session_id)
        while self._sessions:
            oldest_expiry, _ = next(iter(self._sessions.values()))
            if oldest_expiry > now:
                break
            self._sessions.popitem(last=False)

    async def load_session(self, session_id: str) -> SessionRecord | None:
        entry = self._sessions.get(session_id)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    async def delete_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    # --- shared limits (shared by this process only) ------------------------------------

    async def acquire_slot(self, identity: str, holder_id: str, limit: int) -> bool:
        return take_local_slot(self._slots, identity, holder_id, limit)

    async def release_slot(self, identity: str, holder_id: str) -> None:
        drop_local_slot(self._slots, identity, holder_id)

    async def refresh_slots(self) -> None:
        return None

    async def take_tokens(self, key: str, rate_per_s: float, burst: float, cost: float = 1) -> int:
        return take_local_tokens(self._buckets, key, rate_per_s, burst, cost)


def take_local_slot(slots: dict[str, set[str]], identity: str, holder_id: str, limit: int) -> bool:
    holders = slots.get(identity)
    if holders is not None and holder_id in holders:
        return True
    if (len(holders) if holders else 0) >= limit:
        return False
    slots.setdefault(identity, set()).add(holder_id)
    return True


def drop_local_slot(slots: dict[str, set[str]], identity: str, holder_id: str) -> None:
    holders = slots.get(identity)
    if holders is None:
        return
    holders.discard(holder_id)
    if not holders:
        del slots[identity]


def take_local_tokens(buckets: dict[tuple[float, float], KeyedBuckets], key: str,
                      rate_per_s: float, burst: float, cost: float) -> int:
    limiter = buckets.get((rate_per_s, burst))
    if limiter is None:
        limiter = buckets[(rate_per_s, burst)] = KeyedBuckets(rate_per_s, burst)
    return limiter.take(key, time.monotonic(), cost)
