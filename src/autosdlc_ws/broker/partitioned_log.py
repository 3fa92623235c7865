"""An event log in K independently ordered partitions (CONTRACT §12).

Each partition is a complete single log (`RedisEventLog`: its own epoch,
offsets, stream, id set, last values and channel, under its own hash tag) and
an event goes to the partition of its resource (`core.partitions`), so order
holds per resource while the partitions spread over a cluster's masters. This
class routes and merges:

- publish: events grouped by partition, one script call per partition, run
  side by side. An array is refused whole when any partition it needs is
  unreachable; if a node fails in the middle, the error still refuses the
  whole array and a retry appends only what is missing (ids are deduplicated
  per partition, so events with ids given by the publisher never double).
- positions are vectors (`VectorPosition`), one per partition; resume by
  event id finds the event's partition and offset, and the session's trail
  (`broker.trail`) supplies the others.
- history and snapshots ask each partition concerned and merge; a partition
  whose history is gone is named in `HistoryResult.lost`, and its reset is
  reported with `Outage.partitions`, so only the subscriptions it can affect
  are reset.
- outages: unreachable while any partition it reads is, reachable again once
  all are.
- readers (`readers="needed"`, the default): a worker reads only the
  partitions its subscriptions need (`read_partitions`, awaited before a
  subscription is indexed; `unread_partitions` when none needs one, stopped
  after `linger_s`). A restarted reader starts live at the head, as a new
  worker does. `readers="all"` reads every partition from the start.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from autosdlc_ws.broker.base import (
    LOCAL_EPOCH,
    LOCAL_OFFSET,
    BrokerEvent,
    EventHandler,
    EventLog,
    HistoryResult,
    LogPosition,
    Outage,
    OutageHandler,
    OutageKind,
    Position,
    PublishReceipt,
    SnapshotResult,
    VectorPosition,
)
from autosdlc_ws.broker.redis_link import REDIS_FAILURES, RedisLink
from autosdlc_ws.broker.redis_log import RedisEventLog
from autosdlc_ws.broker.trail import resume_position
from autosdlc_ws.core.partitions import partition_of, partition_scope
from autosdlc_ws.errors import BrokerUnavailable

log = logging.getLogger("autosdlc_ws.broker.partitioned")

#: A partition not asked (a snapshot's vector): covers nothing.
UNREAD = Position("", 0)


def _published_at(record: BrokerEvent) -> int:
    stamp = record.event.get("timestamp")
    return stamp if isinstance(stamp, int) else 0


class PartitionedEventLog(EventLog):
    def __init__(self, logs: Sequence[RedisEventLog], link: RedisLink, *, readers: str = "needed",
                 linger_s: float = 30.0) -> None:
        if not logs:
            raise ValueError("a partitioned log needs at least one partition")
        if readers not in ("needed", "all"):
            raise ValueError("readers must be 'needed' or 'all'")
        self.logs = list(logs)
        self._link = link  # the clients the partitions' links share: closed last
        self.partitions = len(self.logs)
        self.readers = readers
        self._linger_s = linger_s
        self._handler: EventHandler | None = None
        self._on_outage: OutageHandler | None = None
        self._down: set[int] = set()
        self._reported_down = False
        self._starting: dict[int, asyncio.Task[None]] = {}
        self._stops: dict[int, asyncio.TimerHandle] = {}
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, on_event: EventHandler, on_outage: OutageHandler | None = None) -> None:
        self._handler = on_event
        self._on_outage = on_outage
        self._closed = False
        self._link.client()
        if self.readers == "all":
            await self.read_partitions(None)

    async def close(self) -> None:
        self._closed = True
        self._on_outage = None
        self._handler = None
        for timer in self._stops.values():
            timer.cancel()
        self._stops.clear()
        starting, self._starting = list(self._starting.values()), {}
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        await asyncio.gather(*(part.close() for part in self.logs), return_exceptions=True)
        await self._link.close()

    # --- which partitions this worker reads ----------------------------------------------

    async def read_partitions(self, partitions: frozenset[int] | None) -> None:
        wanted = range(self.partitions) if partitions is None else sorted(partitions)
        waits = []
        for p in wanted:
            timer = self._stops.pop(p, None)
            if timer is not None:
                timer.cancel()
            if self.logs[p].reading or self._handler is None:
                continue
            task = self._starting.get(p)
            if task is None:
                task = self._starting[p] = asyncio.get_running_loop().create_task(self._start_partition(p))
            waits.append(task)
        if waits:
            await asyncio.gather(*(asyncio.shield(t) for t in waits))

    async def _start_partition(self, partition: int) -> None:
        try:
            assert self._handler is not None
            await self.logs[partition].start(self._handler, self._outage_handler(partition))
        finally:
            self._starting.pop(partition, None)

    def unread_partitions(self, partitions: frozenset[int]) -> None:
        if self.readers == "all" or self._closed:
            return
        loop = asyncio.get_running_loop()
        for p in partitions:
            if p not in self._stops:
                self._stops[p] = loop.call_later(self._linger_s, self._stop_soon, p)

    def _stop_soon(self, partition: int) -> None:
        self._stops.pop(partition, None)
        asyncio.get_running_loop().create_task(self._stop_partition(partition))

    async def _stop_partition(self, partition: int) -> None:
        if self._closed or partition in self._starting:
            return
        await self.logs[partition].stop_reading()
        if partition in self._down:  # what it said about its health no longer applies
            self._partition_outage(partition, Outage(OutageKind.UNAVAILABLE, False, "partition no longer read"))

    @property
    def reading(self) -> list[int]:
        """The partitions this worker reads now."""
        return [p for p, part in enumerate(self.logs) if part.reading]

    def _outage_handler(self, partition: int) -> OutageHandler:
        def report(outage: Outage) -> None:
            self._partition_outage(partition, outage)
        return report

    def _partition_outage(self, partition: int, outage: Outage) -> None:
        if self._on_outage is None:
            return
        if outage.kind is OutageKind.HISTORY_RESET:
            self._on_outage(Outage(outage.kind, True, f"partition {partition}: {outage.detail}",
                                   frozenset({partition})))
            return
        if outage.started:
            self._down.add(partition)
        else:
            self._down.discard(partition)
        if self._down and not self._reported_down:
            self._reported_down = True
            self._on_outage(Outage(outage.kind, True, f"{outage.detail} (partitions {sorted(self._down)})",
                                   frozenset(self._down)))
        elif not self._down and self._reported_down:
            self._reported_down = False
            self._on_outage(Outage(outage.kind, False, outage.detail))

    # --- publishing -------------------------------------------------------------------------

    def partition_of(self, event: Mapping[str, Any]) -> int:
        data = event.get("data")
        return partition_of(str(event["type"]), data if isinstance(data, dict) else {}, self.partitions)

    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        if not events:
            return []
        groups: dict[int, list[int]] = {}
        for i, event in enumerate(events):
            groups.setdefault(self.partition_of(event), []).append(i)
        # refused whole when a partition known to be down is needed (one this worker
        # does not read is tried: its script call fails if it is unreachable)
        unreachable = sorted(p for p in groups if self.logs[p].reading and not self.logs[p].available)
        if unreachable:
            raise BrokerUnavailable(f"redis cluster: partitions {unreachable} are unreachable")
        answers = await asyncio.gather(
            *(self.logs[p].publish([events[i] for i in indexes]) for p, indexes in groups.items()),
            return_exceptions=True)
        receipts: list[PublishReceipt | None] = [None] * len(events)
        for (partition, indexes), answer in zip(groups.items(), answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, (BrokerUnavailable, *REDIS_FAILURES)):
                    raise BrokerUnavailable(f"redis cluster: partition {partition}: {answer}") from answer
                raise answer
            for i, receipt in zip(indexes, answer, strict=True):
                receipts[i] = receipt
        return [r for r in receipts if r is not None]

    def deliver_local(self, event: dict[str, Any]) -> None:
        # a local event names no partition: a resume finds it in the session's trail
        if self._handler is not None:
            self._handler(BrokerEvent(event, LOCAL_OFFSET, LOCAL_EPOCH))

    # --- positions, history, snapshots ---------------------------------------------------------

    async def head(self) -> VectorPosition:
        parts = await asyncio.gather(*(part.head() for part in self.logs))
        return VectorPosition(tuple(parts))

    async def locate(self, event_id: str) -> tuple[int, Position] | None:
        """The partition and position of a logged event (None: unknown or trimmed)."""
        try:
            found = await asyncio.gather(*(part.trim(event_id) for part in self.logs))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis cluster: {exc}") from exc
        for partition, (epoch, _, _, offset) in enumerate(found):
            if offset >= 0:
                return partition, Position(epoch, offset)
        return None

    async def history_after(
        self, *, position: LogPosition | None = None, event_id: str | None = None,
        trail: Mapping[str, Any] | None = None, limit: int = 100_000
    ) -> HistoryResult:
        start = position if isinstance(position, VectorPosition) and \
            len(position.parts) == self.partitions else None
        if event_id is not None:
            if start is None:  # no session to go by: all that is kept of the other partitions
                head = await self.head()
                start = VectorPosition(tuple(Position(p.epoch, 0) for p in head.parts))
            resume = resume_position(start, trail, event_id, await self.locate(event_id))
            if resume is None:
                return HistoryResult([], False, "last event id is unknown or past the history retention",
                                     await self.head())
            if not resume.exact:
                log.info("resume after %s: the session's trail did not place it; events of other "
                         "partitions since the session began are sent again", event_id)
            vector = resume.position
        elif start is not None:
            vector = start
        elif position is None:
            raise ValueError("history_after needs a position or an event id")
        else:
            return HistoryResult([], False, "history was reset since this position", await self.head())
        answers = await asyncio.gather(*(part.history_after(position=vector.parts[i], limit=limit)
                                         for i, part in enumerate(self.logs)))
        events: list[BrokerEvent] = [record for answer in answers for record in answer.events]
        lost = frozenset(i for i, answer in enumerate(answers) if not answer.complete)
        reason = next((a.reason for a in answers if not a.complete), None)
        head = VectorPosition(tuple(a.head if isinstance(a.head, Position) else UNREAD for a in answers))
        return HistoryResult(events, not lost, reason, head, lost or None)

    async def snapshot(self, types: frozenset[str], filters: Mapping[str, frozenset[str]]) -> SnapshotResult:
        scope = partition_scope(types, filters, self.partitions)
        asked = sorted(scope) if scope is not None else list(range(self.partitions))
        answers = await asyncio.gather(*(self.logs[p].snapshot(types, filters) for p in asked))
        parts = [UNREAD] * self.partitions
        for partition, answer in zip(asked, answers, strict=True):
            if isinstance(answer.position, Position):
                parts[partition] = answer.position
        # oldest first: each partition's own order, interleaved by publish time
        events = list(heapq.merge(*(a.events for a in answers), key=_published_at))
        return SnapshotResult(events, VectorPosition(tuple(parts)))

    async def ready(self) -> bool:
        reading = [part for part in self.logs if part.reading]
        if not all(await asyncio.gather(*(part.ready() for part in reading))):
            return False
        if len(reading) == self.partitions:
            return True
        try:  # the partitions nobody here reads: can their masters be reached?
            await asyncio.wait_for(self.head(), self._link.connect_timeout_s * 2)
        except (TimeoutError, BrokerUnavailable):
            return False
        return True

    # --- counters (tests, logs, metrics) ------------------------------------------------------------

    @property
    def reconnects(self) -> int:
        return sum(part.reconnects for part in self.logs)

    @property
    def epoch_resets(self) -> int:
        return sum(part.epoch_resets for part in self.logs)

    @property
    def events_lost(self) -> int:
        return sum(part.events_lost for part in self.logs)
