"""The Redis event log: several workers (and hosts) share one log and one live channel.

Publishing is one Lua script per call (`PUBLISH` in `redis_scripts`): it
skips ids already in the log, gives each new event the next offset, appends
it to the stream and publishes all of them in one Pub/Sub message, so the
log and the live channel can never disagree about order or membership.

Each worker holds ONE Pub/Sub connection, whatever its client count. The
reader delivers to the handler strictly in offset order: a message whose
first offset is past the next expected one (a dropped or re-made Pub/Sub
connection) is preceded by the missing range read from the stream. After a
reconnect the reader subscribes first, then reads the head and fills
everything between what it delivered and the head from the stream, then goes
live, dropping live copies of what it already delivered.

`history_after` returns only what this worker's live reader has already
passed to the handler (it waits until the reader reaches the log head it
read), so a resuming connection, whose subscriptions are indexed before it
asks, gets every later event live and every earlier one from history:
exactly once, with no gap between the two.
It answers from memory when it can: the reader keeps the newest events it
delivered (`recent_events`, `broker.recent_events`), so a client a few
seconds behind costs no stream read and no parsing; an older range is read
from the stream.

Retention: `MAXLEN ~ max_events` on every append (Redis drops whole stream
nodes, so up to one node, about 100 entries, more than `max_events` can be
kept), and age by a periodic script that binary-searches the first entry
younger than `max_age_s` (entry timestamps come from Redis's clock and only
grow) and `XTRIM MINID`s before it; history reads run the same script first.

Outage: when the reader loses Redis it marks the link unavailable
(`ready()` is False, so `/readyz` says 503) and retries with jittered
exponential backoff; publishes fail with `BrokerUnavailable` meanwhile. An
outage longer than `alert_after_s` is reported to `on_outage` (the gateway
words the alert), and so is its end, once the reader has resubscribed and
filled the missed offsets from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson

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
)
from autosdlc_ws.broker.recent_events import RecentEvents
from autosdlc_ws.broker.redis_link import REDIS_FAILURES, RedisLink, cancel_all, text
from autosdlc_ws.broker.redis_pubsub import ReaderTimings, read_forever
from autosdlc_ws.core.last_values import index_tags, lookup_plan, matches
from autosdlc_ws.errors import BrokerUnavailable

log = logging.getLogger("autosdlc_ws.broker.redis")

STREAM_CHUNK = 2000  # entries per XRANGE when a range is read from the stream


class RedisEventLog(EventLog):
    def __init__(
        self,
        link: RedisLink,
        *,
        max_events: int = 100_000,
        max_age_s: float = 3600.0,
        reconnect_min_s: float = 0.05,
        reconnect_max_s: float = 5.0,
        catch_up_timeout_s: float = 5.0,
        idle_ping_s: float = 2.0,
        trim_interval_s: float | None = None,
        start_timeout_s: float = 5.0,
        alert_after_s: float = 1.0,
        snapshot_max_keys: int = 100_000,
        snapshot_ttl_s: float = 86_400.0,
        partition: int = 0,
        recent_events: int = 10_000,
    ) -> None:
        self.link = link
        #: This log's number in a partitioned log (`broker.partitioned_log`), stamped on its events.
        self.partition = partition
        self.channel = f"{link.prefix}events"
        self._log_key = link.log_keys[2]
        self.max_events = max_events
        self.max_age_s = max_age_s
        self.snapshot_max_keys = snapshot_max_keys
        self.snapshot_ttl_s = snapshot_ttl_s
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._catch_up_timeout_s = catch_up_timeout_s
        self._idle_ping_s = idle_ping_s
        self._trim_interval_s = trim_interval_s if trim_interval_s is not None else min(
            10.0, max(0.5, max_age_s / 20))
        self._start_timeout_s = start_timeout_s
        self._handler: EventHandler | None = None
        self._on_outage: OutageHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        # live delivery state: the epoch being delivered and the last offset handed over
        self._epoch: str | None = None
        self._delivered = 0
        self._waiters: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._connected: asyncio.Event | None = None
        self._down_since: float | None = None
        self._alert_after_s = alert_after_s
        self._outage_timer: asyncio.TimerHandle | None = None
        self._outage_reported = False
        self._ever_connected = False
        self._local_ids: list[tuple[str, int, str]] = []  # (epoch, offset, id) of local events
        # the newest delivered events, to answer resumes without reading the stream again
        self._recent = RecentEvents(recent_events)
        # counters (for tests, logs and metrics)
        self.reconnects = 0
        self.gap_fills = 0
        self.events_filled = 0
        self.events_lost = 0
        self.epoch_resets = 0
        self.history_reads = 0  # resumes answered from the stream
        self.history_cache_hits = 0  # resumes answered from the recent events in memory

    @property
    def available(self) -> bool:
        return self.link.available

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, on_event: EventHandler, on_outage: OutageHandler | None = None) -> None:
        """Connect the live reader; wait up to `start_timeout_s` for it.

        If Redis is down at start the worker still starts (not ready) and the
        reader keeps retrying in the background."""
        self._handler = on_event
        self._on_outage = on_outage
        self._closed = False
        self._connected = asyncio.Event()
        self.link.client()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_forever(), name="redis-broker-reader"),
                       loop.create_task(self._trim_forever(), name="redis-broker-trim")]
        try:
            await asyncio.wait_for(self._connected.wait(), self._start_timeout_s)
        except TimeoutError:
            log.warning("redis broker %s not reachable at start; serving not-ready and retrying",
                        self.link.safe_url)

    @property
    def reading(self) -> bool:
        """Is the live reader running (started and not stopped)?"""
        return bool(self._tasks) and not self._closed

    async def stop_reading(self) -> None:
        """Stop live delivery but keep the clients (a partition no subscription on
        this worker needs any more). A later `start` begins live at the head again,
        as on a first start: nothing published meanwhile is delivered."""
        await self._stop_tasks()
        self._epoch, self._delivered = None, 0
        self._recent.clear()
        self._down_since = None
        self._outage_reported = False
        self.link.unwatched()

    async def _stop_tasks(self) -> None:
        self._closed = True
        self._handler = None
        self._on_outage = None
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)
        if self._outage_timer is not None:
            self._outage_timer.cancel()
            self._outage_timer = None
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.set_result(False)
        self._waiters.clear()

    async def close(self) -> None:
        await self._stop_tasks()
        await self.link.close()

    # --- publishing -------------------------------------------------------------------

    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        if not events:
            return []
        args: list[str | bytes | int | float] = [self.max_events, self.channel, self.snapshot_max_keys,
                                                 int(self.snapshot_ttl_s * 1000)]
        for event in events:
            args.append(str(event["id"]))
            args.append(orjson.dumps(event))
            data = event.get("data")
            tags = index_tags(data) if isinstance(data, dict) else ()
            args.append(f"{event['type']}|{tags[0] if tags else ''}" if isinstance(data, dict) else "")
            args.append("\n".join(tags))
        try:
            result = await self.link.log_script("PUBLISH", args)
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        receipts = []
        for i, event in enumerate(events):
            offset, duplicate = int(result[1 + 2 * i]), bool(int(result[2 + 2 * i]))
            receipts.append(PublishReceipt(str(event["id"]), offset, duplicate))
        return receipts

    def deliver_local(self, event: dict[str, Any]) -> None:
        if self._handler is None:
            return
        if self._epoch is not None:
            # remembered in Redis once it is reachable, so a client can resume by this id
            self._local_ids.append((self._epoch, self._delivered, event["id"]))
        self._handler(BrokerEvent(event, LOCAL_OFFSET, LOCAL_EPOCH, self.partition))

    async def _remember_local_ids(self) -> None:
        pending, self._local_ids = self._local_ids, []
        by_epoch: dict[str, list[str | int]] = {}
        for epoch, offset, event_id in pending:
            by_epoch.setdefault(epoch, []).extend([offset, event_id])
        for epoch, args in by_epoch.items():
            try:
                await self.link.log_script("REMEMBER_IDS", [epoch, *args])
            except REDIS_FAILURES as exc:
                log.warning("could not record local alert ids: %s", exc)

    # --- positions and history -----------------------------------------------------------

    async def head(self) -> Position:
        try:
            epoch, seq = await self.link.log_script("HEAD", [])
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        return Position(text(epoch), int(seq))

    async def trim(self, event_id: str = "") -> tuple[str, int, int, int]:
        """Apply the age limit now; (epoch, head offset, first kept offset, offset of event_id or -1)."""
        epoch, seq, kept, found = await self.link.log_script(
            "TRIM", [int(self.max_age_s * 1000), event_id])
        return text(epoch), int(seq), int(kept), int(found)

    async def history_after(
        self, *, position: LogPosition | None = None, event_id: str | None = None,
        trail: Mapping[str, Any] | None = None, limit: int = 100_000
    ) -> HistoryResult:
        if event_id is None and position is None:
            raise ValueError("history_after needs a position or an event id")
        try:
            epoch, seq, kept, found = await self.trim(event_id or "")
            head = Position(epoch, seq)
            if event_id is not None:
                if found < 0:
                    return HistoryResult(
                        [], False, "last event id is unknown or past the history retention", head)
                start = found
            else:
                assert position is not None
                if not isinstance(position, Position) or position.epoch != epoch:
                    return HistoryResult([], False, "history was reset since this position", head)
                start = position.offset
            if start > seq:
                return HistoryResult([], False, "position is ahead of the log (history was lost)", head)
            complete = start + 1 >= kept
            reason = None if complete else "some missed events are past the history retention"
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        # Everything up to `seq` must have passed this worker's live handler
        # before we return: the caller's subscriptions are already indexed, so
        # later offsets reach it live and earlier ones only through this answer.
        outcome = await self._wait_delivered(epoch, seq, self._catch_up_timeout_s)
        if outcome == "reset":
            return HistoryResult([], False, "history was reset during the resume",
                                 Position(self._epoch or epoch, 0))
        if outcome == "timeout":
            raise BrokerUnavailable("live delivery from redis is lagging; resume later")
        first = max(start + 1, kept)
        last = min(seq, first + limit - 1)
        events = self._recent.between(epoch, first, last)
        if events is None:
            self.history_reads += 1
            events, complete, reason = await self._read_history(epoch, first, last, complete, reason)
        else:
            self.history_cache_hits += 1
        if last < seq:
            complete, reason = False, f"more than {limit} events were missed"
        return HistoryResult(events, complete, reason, head)

    async def _read_history(self, epoch: str, first: int, last: int, complete: bool,
                            reason: str | None) -> tuple[list[BrokerEvent], bool, str | None]:
        """Offsets `first`..`last` from the stream, for a range the recent events in memory do not hold."""
        events: list[BrokerEvent] = []
        expected = first
        try:
            async for offset, event in self._stream_range(first, last):
                if offset != expected and complete:
                    complete, reason = False, "history was trimmed while it was being read"
                expected = offset + 1
                events.append(BrokerEvent(event, offset, epoch, self.partition))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        if expected <= last and complete:
            complete, reason = False, "history was trimmed while it was being read"
        return events, complete, reason

    async def _stream_range(self, first: int, last: int) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """(offset, event) of the stream's entries `first`..`last`, in order, read in chunks."""
        cursor = first
        while cursor <= last:
            chunk = await self.link.client().xrange(self._log_key, f"{cursor}-0", f"{last}-0",
                                                    count=STREAM_CHUNK)
            entries = _entries(chunk)
            if not entries:
                return
            for entry in entries:
                yield entry
            cursor = entries[-1][0] + 1

    async def snapshot(self, types: frozenset[str], filters: Mapping[str, frozenset[str]]) -> SnapshotResult:
        kind, names = lookup_plan(types, filters)
        args = [int(self.snapshot_ttl_s * 1000), "t" if kind == "type" else "r", " ".join(sorted(types)), *names]
        try:
            result = await self.link.log_script("SNAPSHOT", args)
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        epoch, seq = text(result[0]), int(result[1])
        events: list[BrokerEvent] = []
        for i in range(2, len(result), 2):
            event = orjson.loads(bytes(result[i + 1]).partition(b" ")[2])
            if matches(types, filters, event):
                events.append(BrokerEvent(event, int(result[i]), epoch, self.partition))
        events.sort(key=lambda e: e.offset)
        # As for history: everything up to `seq` must have reached this worker's
        # live handler first, so the caller can drop live copies at or below it.
        outcome = await self._wait_delivered(epoch, seq, self._catch_up_timeout_s)
        if outcome == "reset":  # the store went with the old epoch: nothing to send
            return SnapshotResult([], Position(self._epoch or epoch, 0))
        if outcome == "timeout":
            raise BrokerUnavailable("live delivery from redis is lagging; snapshot unavailable")
        return SnapshotResult(events, Position(epoch, seq))

    async def _wait_delivered(self, epoch: str, offset: int, timeout_s: float) -> str:
        if self._handler is None:  # not started: nothing is live here, nothing to wait for
            return "ok"
        if self._epoch == epoch and self._delivered >= offset:
            return "ok"
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        entry = (epoch, offset, fut)
        self._waiters.append(entry)
        try:
            ok = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            return "timeout"
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)
        return "ok" if ok else "reset"

    def _wake_waiters(self) -> None:
        if not self._waiters:
            return
        for epoch, offset, fut in self._waiters:
            if fut.done():
                continue
            if self._epoch != epoch:
                fut.set_result(False)
            elif self._delivered >= offset:
                fut.set_result(True)

    # --- readiness ---------------------------------------------------------------------

    async def ready(self) -> bool:
        if not self.link.available:
            return False
        try:
            await asyncio.wait_for(self.link.client().ping(), self.link.connect_timeout_s)
        except REDIS_FAILURES:
            return False
        return True

    # --- the live reader ----------------------------------------------------------------------

    async def _read_forever(self) -> None:
        """The live reader: subscribe, catch up, deliver; reconnect on any failure
        (`redis_pubsub.read_forever`, shared with the control channel)."""
        timings = ReaderTimings(reconnect_min_s=self._reconnect[0], reconnect_max_s=self._reconnect[1],
                                idle_ping_s=self._idle_ping_s, timeout_s=self.link.command_timeout_s)
        await read_forever(lambda: self.link.subscriber(self.channel), [self.channel], self._on_message,
                           on_up=self._reader_up, on_down=self._went_down, running=lambda: not self._closed,
                           timings=timings, name="redis broker", sharded=self.link.sharded)

    async def _reader_up(self) -> None:
        await self._catch_up()
        self._went_up()

    async def _on_message(self, channel: str, data: bytes) -> None:
        await self._on_payload(data)  # the events channel is the only one

    async def _catch_up(self) -> None:
        """After (re)subscribing: adopt the current epoch and fill up to its head from the stream."""
        epoch, seq = await self.link.log_script("HEAD", [])
        epoch = text(epoch)
        seq = int(seq)
        if self._epoch is None:  # first connection: start live from the current head
            self._epoch, self._delivered = epoch, seq
            self._wake_waiters()
            return
        if epoch != self._epoch:
            self._reset_epoch(epoch)
        if seq > self._delivered:
            await self._fill(self._delivered + 1, seq)
        elif seq < self._delivered:
            # Same epoch but a shorter log: a failover to a replica that missed the
            # newest writes, or a restart from a persistence file that did. Those
            # offsets would be handed out again to other events: start a new epoch
            # instead, so every position into the old one is known to be stale.
            log.warning("redis log head %d is behind delivered offset %d in epoch %s; starting a new epoch",
                        seq, self._delivered, epoch)
            self._reset_epoch(text(await self.link.log_script("NEW_EPOCH", [epoch])),
                              "the Redis log lost its newest events (a failover or a restart that "
                              "missed writes); events published just before cannot be resumed")
        self._wake_waiters()

    def _reset_epoch(self, epoch: str, detail: str = "Redis lost its event history (new epoch); events "
                     "published before the reset cannot be resumed") -> None:
        if epoch == self._epoch:
            return
        log.warning("redis history was reset: epoch %s -> %s", self._epoch, epoch)
        self.epoch_resets += 1
        self._epoch, self._delivered = epoch, 0
        self._recent.clear()
        self._local_ids.clear()
        self._wake_waiters()
        self._report(OutageKind.HISTORY_RESET, True, detail)

    async def _on_payload(self, payload: bytes) -> None:
        lines = payload.split(b"\n")
        epoch = lines[0].decode()
        if epoch != self._epoch:
            self._reset_epoch(epoch)
        for line in lines[1:]:
            raw_offset, _, body = line.partition(b" ")
            offset = int(raw_offset)
            if offset <= self._delivered:
                continue  # already delivered (from the stream, after a reconnect)
            if offset > self._delivered + 1:
                await self._fill(self._delivered + 1, offset - 1)
            self._deliver(BrokerEvent(orjson.loads(body), offset, epoch, self.partition))
        self._wake_waiters()

    async def _fill(self, first: int, last: int) -> None:
        """Deliver offsets first..last of the current epoch from the stream."""
        assert self._epoch is not None
        epoch = self._epoch
        self.gap_fills += 1
        async for offset, event in self._stream_range(first, last):
            if offset > self._delivered + 1:
                self.events_lost += offset - self._delivered - 1
                log.warning("redis broker: offsets %d..%d were trimmed before delivery",
                            self._delivered + 1, offset - 1)
            self._deliver(BrokerEvent(event, offset, epoch, self.partition))
            self.events_filled += 1
        if self._delivered < last:
            self.events_lost += last - self._delivered
            log.warning("redis broker: offsets %d..%d were trimmed before delivery",
                        self._delivered + 1, last)
            self._delivered = last

    def _deliver(self, record: BrokerEvent) -> None:
        self._delivered = record.offset
        self._recent.add(record)
        handler = self._handler
        if handler is None:
            return
        try:
            handler(record)
        except Exception:
            log.exception("event handler failed for offset %d", record.offset)

    # --- outage ----------------------------------------------------------------------------------

    def _report(self, kind: OutageKind, started: bool, detail: str) -> None:
        if self._on_outage is not None:
            self._on_outage(Outage(kind, started, detail))

    def _went_down(self, exc: BaseException) -> None:
        if self._closed:
            return
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("redis broker unavailable (%s: %s); retrying", type(exc).__name__, exc)
            if self.link.available and self._outage_timer is None:
                # A Pub/Sub connection re-made within the grace time is not worth
                # alarming anyone about; a longer outage is.
                self._outage_timer = asyncio.get_running_loop().call_later(
                    self._alert_after_s, self._report_down)
        self.link.went_down()

    def _report_down(self) -> None:
        self._outage_timer = None
        if self.link.available or self._closed:
            return
        self._outage_reported = True
        self._report(OutageKind.UNAVAILABLE, True,
                     "Redis is unreachable: live events from other workers are paused and "
                     "publishes are refused until it returns")

    def _went_up(self) -> None:
        self.link.went_up()
        if self._connected is not None:
            self._connected.set()
        if self._outage_timer is not None:
            self._outage_timer.cancel()
            self._outage_timer = None
        if self._ever_connected:
            self.reconnects += 1
        if self._down_since is not None:
            log.info("redis broker available again after %.1f s", time.monotonic() - self._down_since)
        if self._outage_reported:
            self._outage_reported = False
            self._report(OutageKind.UNAVAILABLE, False,
                         "Redis is reachable again; missed events were recovered from history")
        if self._local_ids:
            self._tasks.append(asyncio.get_running_loop().create_task(self._remember_local_ids()))
        self._down_since = None
        self._ever_connected = True

    # --- retention ---------------------------------------------------------------------------------

    async def _trim_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._trim_interval_s * (0.75 + random.random() / 2))
            if not self.link.available:
                continue
            try:
                await self.trim()
            except REDIS_FAILURES as exc:
                log.debug("history trim failed: %s", exc)


def _offset(entry_id: bytes | str) -> int:
    return int(text(entry_id).partition("-")[0])


def _entries(chunk: Sequence[tuple[Any, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(offset, event) of each stream entry of an XRANGE answer."""
    out = []
    for entry_id, fields in chunk:
        if entry_id is None or not fields:
            continue
        out.append((_offset(entry_id), orjson.loads(fields[b"e"])))
    return out
