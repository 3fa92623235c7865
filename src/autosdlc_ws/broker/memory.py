"""The embedded broker: one process, zero setup, the default.

Publishing appends to a bounded in-memory log and hands the event to the
live handler in the same call, so offsets and delivery order are one thing
and a replay can never race a live event.

Shared limits are this process's own: slots are a set of holders per
identity (no lease: the process that holds them is the one that counts them,
and it cannot die without them), token buckets run on the injected clock.
Every time here comes from that one clock, so tests move it by hand.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import (
    LOCAL_EPOCH,
    LOCAL_OFFSET,
    BrokerEvent,
    EventHandler,
    EventLog,
    HistoryResult,
    LogPosition,
    OutageHandler,
    Position,
    PublishReceipt,
    SessionRecord,
    SessionStore,
    SharedLimits,
    SnapshotResult,
)
from autosdlc_ws.broker.local_limits import LocalBuckets, LocalSlots
from autosdlc_ws.broker.memory_control import MemoryControlChannel
from autosdlc_ws.core.last_values import LastValues

if TYPE_CHECKING:
    from autosdlc_ws.config import Settings

Clock = Callable[[], float]


class MemoryEventLog(EventLog):
    def __init__(self, *, max_events: int = 100_000, max_age_s: float = 3600.0,
                 snapshot_max_keys: int = 100_000, snapshot_ttl_s: float = 86_400.0,
                 clock: Clock = time.monotonic) -> None:
        self.epoch = os.urandom(6).hex()
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._clock = clock
        self._log: deque[tuple[float, BrokerEvent]] = deque()
        self._offsets: dict[str, int] = {}
        self._next_offset = 1
        self._handler: EventHandler | None = None
        self.last_values = LastValues(max_keys=snapshot_max_keys, ttl_s=snapshot_ttl_s, clock=clock)

    async def start(self, on_event: EventHandler, on_outage: OutageHandler | None = None) -> None:
        self._handler = on_event  # one process, no outages to report

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
            self.last_values.put(offset, event)
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
        self, *, position: LogPosition | None = None, event_id: str | None = None,
        trail: Mapping[str, Any] | None = None, limit: int = 100_000
    ) -> HistoryResult:
        self._trim(self._clock())
        head = Position(self.epoch, self._next_offset - 1)
        if event_id is not None:
            offset = self._offsets.get(event_id)
            if offset is None:
                return HistoryResult(
                    [], False, "last event id is unknown or past the history retention", head)
        elif position is not None:
            if not isinstance(position, Position) or position.epoch != self.epoch:
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

    async def snapshot(self, types: frozenset[str], filters: Mapping[str, frozenset[str]]) -> SnapshotResult:
        # Publishing hands each event to the live handler in the same call, so
        # everything up to the head has already been delivered.
        events = [BrokerEvent(e.event, e.offset, self.epoch) for e in self.last_values.lookup(types, filters)]
        return SnapshotResult(events, Position(self.epoch, self._next_offset - 1))

    async def ready(self) -> bool:
        return True

    def deliver_local(self, event: dict[str, Any]) -> None:
        if self._handler is not None:
            self._handler(BrokerEvent(event, LOCAL_OFFSET, LOCAL_EPOCH))


class MemorySessionStore(SessionStore):
    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, tuple[float, SessionRecord]] = OrderedDict()

    async def save(self, record: SessionRecord, ttl_s: float, *, claim: bool = True) -> bool:
        now = self._clock()
        if not claim and record.owner is not None:
            stored = await self.load(record.session_id)
            if stored is not None and stored.owner is not None and stored.owner != record.owner:
                return False
        self._sessions[record.session_id] = (now + ttl_s, record)
        self._sessions.move_to_end(record.session_id)
        while self._sessions:
            oldest_expiry, _ = next(iter(self._sessions.values()))
            if oldest_expiry > now:
                break
            self._sessions.popitem(last=False)
        return True

    async def load(self, session_id: str) -> SessionRecord | None:
        entry = self._sessions.get(session_id)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    async def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


class MemorySharedLimits(SharedLimits):
    """Limits shared by this process only."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._slots = LocalSlots()
        self._buckets = LocalBuckets(clock)

    async def start(self) -> None:
        return None  # no leases to renew

    async def close(self) -> None:
        return None

    async def acquire_slot(self, identity: str, holder_id: str, limit: int) -> bool:
        return self._slots.take(identity, holder_id, limit)

    async def release_slot(self, identity: str, holder_id: str) -> None:
        self._slots.drop(identity, holder_id)

    async def refresh_slots(self) -> None:
        return None  # no leases: this process is the only one counting

    async def take_tokens(self, key: str, rate_per_s: float, burst: float, cost: float = 1) -> int:
        return self._buckets.take(key, rate_per_s, burst, cost)


def memory_backend(*, max_events: int = 100_000, max_age_s: float = 3600.0,
                   snapshot_max_keys: int = 100_000, snapshot_ttl_s: float = 86_400.0,
                   clock: Clock = time.monotonic) -> Backend:
    """The memory implementations on one clock, and a control channel of one node."""
    return Backend(
        name="memory",
        log=MemoryEventLog(max_events=max_events, max_age_s=max_age_s, snapshot_max_keys=snapshot_max_keys,
                           snapshot_ttl_s=snapshot_ttl_s, clock=clock),
        sessions=MemorySessionStore(clock=clock),
        limits=MemorySharedLimits(clock=clock),
        control=MemoryControlChannel(),  # its own hub: this process is the one node
    )


def backend_from_settings(settings: Settings) -> Backend:
    """The `memory` registration (`broker.registry`)."""
    return memory_backend(max_events=settings.history_max_events, max_age_s=settings.history_max_age_s,
                          snapshot_max_keys=settings.snapshot_max_keys, snapshot_ttl_s=settings.snapshot_ttl_s)
