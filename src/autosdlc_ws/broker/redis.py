"""The Redis broker: several workers (and hosts) share one log and one live channel.

Layout (all keys under `prefix`, default `{autosdlc}:`; see `redis_scripts`):

    <prefix>epoch          random; a Redis that lost its data gets a new one
    <prefix>seq            last offset of this epoch
    <prefix>log            Stream, entry id "<offset>-0", fields t (Redis ms), e (event JSON)
    <prefix>ids            sorted set event id -> offset (resume by id, idempotent publish)
    <prefix>session:<id>   a session record (JSON), with a TTL
    <prefix>events         the Pub/Sub channel
    <prefix>slots:<ident>  hash: connection holder -> lease expiry (shared connection caps)
    <prefix>rate:<key>     hash: a token bucket (tokens, last refill), expiring when idle

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

Retention: `MAXLEN ~ max_events` on every append (Redis drops whole stream
nodes, so up to one node, about 100 entries, more than `max_events` can be
kept), and age by a periodic script that binary-searches the first entry
younger than `max_age_s` (entry timestamps come from Redis's clock and only
grow) and `XTRIM MINID`s before it; history reads run the same script first.

Outage: when the reader loses Redis it marks the broker unavailable
(`ready()` is False, so `/readyz` says 503), hands this worker's subscribers
a `system_alert` (epoch `"local"`, offset 0: never in the log, never
replayed), and retries with jittered exponential backoff. Publishes fail
with `BrokerUnavailable` meanwhile. When Redis returns it resubscribes and
fills the missed offsets from the stream, then sends a resolving alert.

Shared limits (`acquire_slot`, `take_tokens`): one Lua script call each,
times from Redis's clock. A slot is held under a lease of `slot_lease_s`
(30 s by default) that this worker renews for all its holders every
`slot_refresh_s` (a third of the lease), so the slots of a worker that dies
without releasing them (kill -9, a lost host) lapse within one lease. While
Redis is unreachable both fail open to this worker's own view: a slot is
granted while this worker holds fewer than the limit for the identity (and
is written to Redis by the first refresh after it returns), a bucket is a
local one with the same rate and burst. See docs/deployment.md, "Limits
across workers".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from autosdlc_ws.broker import redis_scripts
from autosdlc_ws.broker.base import (
    Broker,
    BrokerEvent,
    EventHandler,
    HistoryResult,
    Position,
    PublishReceipt,
    SessionRecord,
)
from autosdlc_ws.broker.memory import drop_local_slot, take_local_slot, take_local_tokens
from autosdlc_ws.core.envelope import new_id
from autosdlc_ws.core.ratelimit import KeyedBuckets
from autosdlc_ws.errors import BrokerUnavailable

log = logging.getLogger("autosdlc_ws.broker.redis")

#: Epoch and offset of events that exist only on this worker (outage alerts).
LOCAL_EPOCH = "local"
LOCAL_OFFSET = 0

#: Failures that mean "Redis cannot be reached or used right now".
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

HISTORY_CHUNK = 2000
FILL_CHUNK = 2000
#: Identities per REFRESH_SLOTS call.
REFRESH_CHUNK = 200


class RedisBroker(Broker):
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "{autosdlc}:",
        max_events: int = 100_000,
        max_age_s: float = 3600.0,
        reconnect_min_s: float = 0.05,
        reconnect_max_s: float = 5.0,
        connect_timeout_s: float = 1.0,
        command_timeout_s: float = 5.0,
        catch_up_timeout_s: float = 5.0,
        idle_ping_s: float = 2.0,
        trim_interval_s: float | None = None,
        start_timeout_s: float = 5.0,
        local_alerts: bool = True,
        alert_after_s: float = 1.0,
        max_connections: int = 64,
        clock_ms: Callable[[], int] | None = None,
        slot_lease_s: float = 30.0,
        slot_refresh_s: float | None = None,
        limit_timeout_s: float = 1.0,
        limit_retry_s: float = 1.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.channel = f"{prefix}events"
        self._keys = [f"{prefix}epoch", f"{prefix}seq", f"{prefix}log", f"{prefix}ids"]
        self._log_key = self._keys[2]
        self.max_events = max_events
        self.max_age_s = max_age_s
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._connect_timeout_s = connect_timeout_s
        self._command_timeout_s = command_timeout_s
        self._catch_up_timeout_s = catch_up_timeout_s
        self._idle_ping_s = idle_ping_s
        self._trim_interval_s = trim_interval_s if trim_interval_s is not None else min(
            10.0, max(0.5, max_age_s / 20))
        self._start_timeout_s = start_timeout_s
        self._max_connections = max_connections
        self._local_alerts = local_alerts
        self.reports_outages = local_alerts
        self._now_ms: Callable[[], int] = clock_ms or (lambda: int(time.time() * 1000))
        self._client: Redis | None = None
        self._sub_client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._handler: EventHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        # live delivery state: the epoch being delivered and the last offset handed over
        self._epoch: str | None = None
        self._delivered = 0
        self._waiters: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._connected: asyncio.Event | None = None
        #: False while the live reader is cut off from Redis.
        self.available = False
        self._down_since: float | None = None
        self._alert_after_s = alert_after_s
        self._alert_timer: asyncio.TimerHandle | None = None
        self._alert_sent = False
        self._ever_connected = False
        self._local_ids: list[tuple[str, int, str]] = []  # (epoch, offset, id) of local alerts
        # shared limits
        self.slot_lease_s = slot_lease_s
        self.slot_refresh_s = slot_refresh_s if slot_refresh_s is not None else slot_lease_s / 3
        if not 0 < self.slot_refresh_s < slot_lease_s:
            raise ValueError("slot_refresh_s must be positive and shorter than slot_lease_s")
        self._limit_timeout_s = limit_timeout_s
        self._limit_retry_s = limit_retry_s
        self._limits_client: Redis | None = None
        self._limit_scripts: dict[str, AsyncScript] = {}
        self._limits_retry_at = 0.0  # after a failed limit call, decide locally until then
        self._slots: dict[str, set[str]] = {}  # identity -> holders this worker keeps alive
        self._unreleased: set[tuple[str, str]] = set()  # releases Redis has not seen yet
        self._fallback_buckets: dict[tuple[float, float], KeyedBuckets] = {}
        self._limits_degraded = False
        self._alert_id = f"{socket.gethostname()}:{os.getpid()}:broker_unavailable"
        # counters (for tests, logs and metrics)
        self.reconnects = 0
        self.gap_fills = 0
        self.events_filled = 0
        self.events_lost = 0
        self.epoch_resets = 0
        self.limit_fallbacks = 0  # slot and bucket decisions taken locally (Redis unreachable)

    # --- clients and scripts ------------------------------------------------------

    def _redis(self) -> Redis:
        if self._client is None:
            # Publishing is idempotent (ids are deduplicated in the script), so a
            # retried call can never append an event twice.
            # A blocking pool: a burst of commands (1,000 clients connecting at once,
            # each saving its session) waits for a free connection instead of failing.
            pool = BlockingConnectionPool.from_url(
                self.url, max_connections=self._max_connections, timeout=self._command_timeout_s,
                socket_connect_timeout=self._connect_timeout_s, socket_timeout=self._command_timeout_s,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2))
            self._client = Redis.from_pool(pool)
            for name in ("PUBLISH", "HEAD", "TRIM", "REMEMBER_IDS"):
                self._scripts[name] = self._client.register_script(getattr(redis_scripts, name))
        return self._client

    async def _script(self, name: str, args: Sequence[str | bytes | int | float]) -> Any:
        self._redis()
        return await self._scripts[name](keys=self._keys, args=[os.urandom(8).hex(), *args])

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, on_event: EventHandler) -> None:
        """Connect the live reader; wait up to `start_timeout_s` for it.

        If Redis is down at start the worker still starts (not ready) and the
        reader keeps retrying in the background."""
        self._handler = on_event
        self._closed = False
        self._connected = asyncio.Event()
        self._redis()
        self._sub_client = Redis.from_url(
            self.url, socket_connect_timeout=self._connect_timeout_s,
            socket_timeout=self._command_timeout_s, retry=Retry(NoBackoff(), 0))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_forever(), name="redis-broker-reader"),
                       loop.create_task(self._trim_forever(), name="redis-broker-trim"),
                       loop.create_task(self._refresh_forever(), name="redis-broker-slots")]
        try:
            await asyncio.wait_for(self._connected.wait(), self._start_timeout_s)
        except TimeoutError:
            log.warning("redis broker %s not reachable at start; serving not-ready and retrying",
                        self._safe_url())

    async def close(self) -> None:
        self._closed = True
        self._handler = None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in (self._sub_client, self._client, self._limits_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._sub_client = self._client = self._limits_client = None
        self.available = False
        if self._alert_timer is not None:
            self._alert_timer.cancel()
            self._alert_timer = None
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.set_result(False)
        self._waiters.clear()

    def _safe_url(self) -> str:
        return redact_url(self.url)

    # --- publishing -------------------------------------------------------------------

    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        if not events:
            return []
        args: list[str | bytes | int | float] = [self.max_events, self.channel]
        for event in events:
            args.append(str(event["id"]))
            args.append(orjson.dumps(event))
        try:
            result = await self._script("PUBLISH", args)
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        receipts = []
        for i, event in enumerate(events):
            offset, duplicate = int(result[1 + 2 * i]), bool(int(result[2 + 2 * i]))
            receipts.append(PublishReceipt(str(event["id"]), offset, duplicate))
        return receipts

    # --- positions and history -----------------------------------------------------------

    async def head(self) -> Position:
        try:
            epoch, seq = await self._script("HEAD", [])
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        return Position(_text(epoch), int(seq))

    async def trim(self, event_id: str = "") -> tuple[str, int, int, int]:
        """Apply the age limit now; (epoch, head offset, first kept offset, offset of event_id or -1)."""
        epoch, seq, kept, found = await self._script(
            "TRIM", [int(self.max_age_s * 1000), event_id])
        return _text(epoch), int(seq), int(kept), int(found)

    async def history_after(
        self, *, position: Position | None = None, event_id: str | None = None, limit: int = 100_000
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
                if position.epoch != epoch:
                    return HistoryResult([], False, "history was reset since this position", head)
                start = position.offset
            if start > seq:
                return HistoryResult([], False, "position is ahead of the log (history was lost)", head)
            complete = start + 1 >= kept
            reason = None if complete else "some missed events are past the history retention"
            events: list[BrokerEvent] = []
            expected = max(start + 1, kept)
            cursor = start + 1
            while cursor <= seq and len(events) < limit:
                count = min(HISTORY_CHUNK, limit - len(events))
                chunk = await self._redis().xrange(self._log_key, f"{cursor}-0", f"{seq}-0", count=count)
                if not chunk:
                    break
                for offset, event in _entries(chunk):
                    if offset != expected and complete:
                        complete, reason = False, "history was trimmed while it was being read"
                    expected = offset + 1
                    events.append(BrokerEvent(event, offset, epoch))
                cursor = expected
            if events and events[-1].offset < seq and len(events) >= limit:
                complete, reason = False, f"more than {limit} events were missed"
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
        return HistoryResult(events, complete, reason, head)

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
        if not self.available:
            return False
        try:
            await asyncio.wait_for(self._redis().ping(), self._connect_timeout_s)
        except REDIS_FAILURES:
            return False
        return True

    # --- sessions --------------------------------------------------------------------------

    def _session_key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    async def save_session(self, record: SessionRecord, ttl_s: float) -> None:
        try:
            await self._redis().set(self._session_key(record.session_id), orjson.dumps(record.to_json()),
                                    px=max(1, int(ttl_s * 1000)))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc

    async def load_session(self, session_id: str) -> SessionRecord | None:
        try:
            raw = await self._redis().get(self._session_key(session_id))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        if raw is None:
            return None
        return SessionRecord.from_json(orjson.loads(raw))

    async def delete_session(self, session_id: str) -> None:
        try:
            await self._redis().delete(self._session_key(session_id))
        except REDIS_FAILURES as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc

    # --- the live reader ----------------------------------------------------------------------

    async def _read_forever(self) -> None:
        delay = self._reconnect[0]
        while not self._closed:
            assert self._sub_client is not None
            pubsub = self._sub_client.pubsub(ignore_subscribe_messages=False)
            try:
                await self._subscribe(pubsub)
                await self._catch_up()
                self._went_up()
                delay = self._reconnect[0]
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except REDIS_FAILURES as exc:
                self._went_down(exc)
            except Exception as exc:  # a bug must not stop delivery for good
                log.exception("redis broker reader failed")
                self._went_down(exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
            if self._closed:
                break
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(self._reconnect[1], delay * 2)

    async def _subscribe(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(self.channel)
        deadline = time.monotonic() + self._command_timeout_s
        while True:
            msg = await pubsub.get_message(timeout=max(0.01, deadline - time.monotonic()))
            if msg is not None and msg["type"] == "subscribe":
                return
            if time.monotonic() >= deadline:
                raise TimeoutError("no subscribe confirmation from redis")

    async def _listen(self, pubsub: PubSub) -> None:
        """Deliver live messages; ping when idle so a dead peer is noticed."""
        last_rx = time.monotonic()
        ping_sent: float | None = None
        while not self._closed:
            msg = await pubsub.get_message(timeout=0.5)
            now = time.monotonic()
            if msg is None:
                if ping_sent is not None:
                    if now - ping_sent > self._idle_ping_s + self._command_timeout_s:
                        raise TimeoutError("redis did not answer a ping on the pub/sub connection")
                elif now - last_rx > self._idle_ping_s:
                    await pubsub.ping()
                    ping_sent = now
                continue
            last_rx, ping_sent = now, None
            if msg["type"] == "message":
                await self._on_payload(msg["data"])

    async def _catch_up(self) -> None:
        """After (re)subscribing: adopt the current epoch and fill up to its head from the stream."""
        epoch, seq = await self._script("HEAD", [])
        epoch = _text(epoch)
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
            # Same epoch but a shorter log: Redis restarted from a persistence
            # file that missed the newest writes. Offsets will be handed out
            # again, so treat it as a reset rather than silently drop them.
            log.warning("redis log head %d is behind delivered offset %d in epoch %s",
                        seq, self._delivered, epoch)
            self._delivered = seq
        self._wake_waiters()

    def _reset_epoch(self, epoch: str) -> None:
        log.warning("redis history was reset: epoch %s -> %s", self._epoch, epoch)
        self.epoch_resets += 1
        self._epoch, self._delivered = epoch, 0
        self._local_ids.clear()
        self._wake_waiters()
        self._alert("warning", "Broker history reset",
                    "Redis lost its event history (new epoch); events published before the reset "
                    "cannot be resumed", resolved=False, alert_id=f"{self._alert_id}:history_reset")

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
            self._deliver(BrokerEvent(orjson.loads(body), offset, epoch))
        self._wake_waiters()

    async def _fill(self, first: int, last: int) -> None:
        """Deliver offsets first..last of the current epoch from the stream."""
        assert self._epoch is not None
        epoch = self._epoch
        self.gap_fills += 1
        cursor = first
        while cursor <= last:
            chunk = await self._redis().xrange(self._log_key, f"{cursor}-0", f"{last}-0",
                                               count=FILL_CHUNK)
            if not chunk:
                break
            for offset, event in _entries(chunk):
                if offset > self._delivered + 1:
                    self.events_lost += offset - self._delivered - 1
                    log.warning("redis broker: offsets %d..%d were trimmed before delivery",
                                self._delivered + 1, offset - 1)
                self._deliver(BrokerEvent(event, offset, epoch))
                self.events_filled += 1
                cursor = offset + 1
        if self._delivered < last:
            self.events_lost += last - self._delivered
            log.warning("redis broker: offsets %d..%d were trimmed before delivery",
                        self._delivered + 1, last)
            self._delivered = last

    def _deliver(self, record: BrokerEvent) -> None:
        self._delivered = record.offset
        handler = self._handler
        if handler is None:
            return
        try:
            handler(record)
        except Exception:
            log.exception("event handler failed for offset %d", record.offset)

    # --- outage ----------------------------------------------------------------------------------

    def _went_down(self, exc: BaseException) -> None:
        if self._closed:
            return
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("redis broker unavailable (%s: %s); retrying", type(exc).__name__, exc)
            if self.available and self._alert_timer is None:
                # A Pub/Sub connection re-made within the grace time is not worth
                # alarming anyone about; a longer outage is.
                self._alert_timer = asyncio.get_running_loop().call_later(
                    self._alert_after_s, self._alert_down)
        self.available = False

    def _alert_down(self) -> None:
        self._alert_timer = None
        if self.available or self._closed:
            return
        self._alert_sent = True
        self._alert("critical", "Broker unavailable",
                    "Redis is unreachable: live events from other workers are paused and "
                    "publishes are refused until it returns", resolved=False)

    def _went_up(self) -> None:
        self.available = True
        if self._connected is not None:
            self._connected.set()
        if self._alert_timer is not None:
            self._alert_timer.cancel()
            self._alert_timer = None
        if self._ever_connected:
            self.reconnects += 1
        if self._down_since is not None:
            log.info("redis broker available again after %.1f s", time.monotonic() - self._down_since)
        if self._alert_sent:
            self._alert_sent = False
            self._alert("info", "Broker unavailable",
                        "resolved: Redis is reachable again; missed events were recovered from history",
                        resolved=True)
        if self._local_ids:
            self._tasks.append(asyncio.get_running_loop().create_task(self._remember_local_ids()))
        self._limits_retry_at = 0.0
        if self._ever_connected and (self._slots or self._unreleased):
            # slots granted and released while Redis was away: tell it now, not at the next refresh
            self._tasks.append(asyncio.get_running_loop().create_task(self._refresh_quietly()))
        self._down_since = None
        self._ever_connected = True

    def _alert(self, severity: str, title: str, message: str, *, resolved: bool,
               alert_id: str | None = None) -> None:
        """Hand this worker's subscribers a system_alert that never goes through Redis."""
        if not self._local_alerts or self._handler is None:
            return
        event_id = new_id("alert")
        event = {
            "id": event_id, "type": "system_alert", "timestamp": self._now_ms(),
            "data": {"severity": severity, "title": title, "message": message,
                     "alertId": alert_id or self._alert_id, "source": "gateway", "resolved": resolved},
            "metadata": {"version": "1.0", "source": "gateway"},
        }
        if self._epoch is not None:
            self._local_ids.append((self._epoch, self._delivered, event_id))
        self._handler(BrokerEvent(event, LOCAL_OFFSET, LOCAL_EPOCH))

    async def _remember_local_ids(self) -> None:
        pending, self._local_ids = self._local_ids, []
        by_epoch: dict[str, list[str | int]] = {}
        for epoch, offset, event_id in pending:
            by_epoch.setdefault(epoch, []).extend([offset, event_id])
        for epoch, args in by_epoch.items():
            try:
                await self._script("REMEMBER_IDS", [epoch, *args])
            except REDIS_FAILURES as exc:
                log.warning("could not record local alert ids: %s", exc)

    # --- shared limits ------------------------------------------------------------------------------

    def _slot_key(self, identity: str) -> str:
        return f"{self.prefix}slots:{identity}"

    def _limits_redis(self) -> Redis:
        """The client of the limit calls: no retries and short timeouts, since a
        publish or an upgrade waits for it; when Redis does not answer at once
        the decision is taken locally instead."""
        if self._limits_client is None:
            pool = BlockingConnectionPool.from_url(
                self.url, max_connections=self._max_connections, timeout=self._limit_timeout_s,
                socket_connect_timeout=self._limit_timeout_s, socket_timeout=self._limit_timeout_s,
                retry=Retry(NoBackoff(), 0))
            self._limits_client = Redis.from_pool(pool)
            for name in ("ACQUIRE_SLOT", "REFRESH_SLOTS", "TAKE_TOKENS"):
                self._limit_scripts[name] = self._limits_client.register_script(getattr(redis_scripts, name))
        return self._limits_client

    async def _limit_script(self, name: str, keys: Sequence[str],
                            args: Sequence[str | bytes | int | float]) -> Any:
        self._limits_redis()
        return await asyncio.wait_for(self._limit_scripts[name](keys=keys, args=args), self._limit_timeout_s)

    async def _limit_client_call(self, call: Any) -> Any:
        return await asyncio.wait_for(call, self._limit_timeout_s)

    def _limits_usable(self) -> bool:
        return self.available and time.monotonic() >= self._limits_retry_at

    def _degraded(self, what: str, exc: BaseException | None) -> None:
        self.limit_fallbacks += 1
        if exc is not None:
            self._limits_retry_at = time.monotonic() + self._limit_retry_s
        if not self._limits_degraded:
            self._limits_degraded = True
            log.warning("redis unreachable for shared limits (%s%s); deciding locally until it returns",
                        what, f": {type(exc).__name__}: {exc}" if exc else "")

    def _limits_recovered(self) -> None:
        if self._limits_degraded:
            self._limits_degraded = False
            log.info("shared limits are counted in redis again")

    async def acquire_slot(self, identity: str, holder_id: str, limit: int) -> bool:
        if self._limits_usable():
            try:
                taken, _ = await self._limit_script(
                    "ACQUIRE_SLOT", [self._slot_key(identity)],
                    [holder_id, limit, int(self.slot_lease_s * 1000)])
            except REDIS_FAILURES as exc:
                self._degraded("connection slot", exc)
            else:
                self._limits_recovered()
                if not int(taken):
                    return False
                self._slots.setdefault(identity, set()).add(holder_id)
                self._unreleased.discard((identity, holder_id))
                return True
        else:
            self._degraded("connection slot", None)
        # Fail open to this worker's own count: at most `limit` here, written
        # to Redis (and counted by every worker) as soon as it is back.
        return take_local_slot(self._slots, identity, holder_id, limit)

    async def release_slot(self, identity: str, holder_id: str) -> None:
        drop_local_slot(self._slots, identity, holder_id)
        if self._limits_usable():
            try:
                await self._limit_client_call(self._limits_redis().hdel(self._slot_key(identity), holder_id))
                return
            except REDIS_FAILURES as exc:
                log.debug("could not release slot %s of %s: %s", holder_id, identity, exc)
        # Tried again after the next refresh; at worst the lease runs out.
        self._unreleased.add((identity, holder_id))

    async def refresh_slots(self) -> None:
        """Renew the lease of every slot this worker holds; retry releases Redis missed.

        Raises `BrokerUnavailable` when Redis could not be told (the caller retries)."""
        snapshot = {identity: sorted(holders) for identity, holders in self._slots.items() if holders}
        pending, self._unreleased = self._unreleased, set()
        lease_ms = int(self.slot_lease_s * 1000)
        try:
            items = list(snapshot.items())
            for start in range(0, len(items), REFRESH_CHUNK):
                chunk = items[start:start + REFRESH_CHUNK]
                args: list[str | bytes | int | float] = [lease_ms]
                for _, holders in chunk:
                    args.append(len(holders))
                    args.extend(holders)
                await self._limit_script("REFRESH_SLOTS", [self._slot_key(i) for i, _ in chunk], args)
            # A release that raced this refresh may have been overwritten by it:
            # delete every holder of the snapshot that is no longer held.
            gone = {(i, h) for i, holders in snapshot.items() for h in holders
                    if h not in self._slots.get(i, ())}
            stale = pending | gone
            if stale:
                pipe = self._limits_redis().pipeline(transaction=False)
                for identity, holder in stale:
                    pipe.hdel(self._slot_key(identity), holder)
                await self._limit_client_call(pipe.execute())
        except REDIS_FAILURES as exc:
            self._unreleased |= pending | {(i, h) for i, holders in snapshot.items() for h in holders
                                           if h not in self._slots.get(i, ())}
            raise BrokerUnavailable(f"redis: {exc}") from exc

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_slots()
        except BrokerUnavailable as exc:
            log.debug("slot refresh failed: %s", exc)

    async def _refresh_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.slot_refresh_s)
            if self.available and (self._slots or self._unreleased):
                await self._refresh_quietly()

    async def take_tokens(self, key: str, rate_per_s: float, burst: float, cost: float = 1) -> int:
        if self._limits_usable():
            try:
                wait_ms = await self._limit_script(
                    "TAKE_TOKENS", [f"{self.prefix}{key}"], [rate_per_s, burst, cost])
            except REDIS_FAILURES as exc:
                self._degraded("token bucket", exc)
            else:
                self._limits_recovered()
                return int(wait_ms)
        else:
            self._degraded("token bucket", None)
        # Fail open to a bucket of this worker's own (same rate and burst).
        return take_local_tokens(self._fallback_buckets, key, rate_per_s, burst, cost)

    # --- retention ---------------------------------------------------------------------------------

    async def _trim_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._trim_interval_s * (0.75 + random.random() / 2))
            if not self.available:
                continue
            try:
                await self.trim()
            except REDIS_FAILURES as exc:
                log.debug("history trim failed: %s", exc)


def redact_url(url: str) -> str:
    """A broker URL without its credentials, for logs and banners."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _offset(entry_id: bytes | str) -> int:
    return int(_text(entry_id).partition("-")[0])


def _entries(chunk: Sequence[tuple[Any, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(offset, event) of each stream entry of an XRANGE answer."""
    out = []
    for entry_id, fields in chunk:
        if entry_id is None or not fields:
            continue
        out.append((_offset(entry_id), orjson.loads(fields[b"e"])))
    return out

