"""One WebSocket connection: feeds its `ConnectionCore`, owns its write queue.

Writes bypass aiohttp's per-message `send_*` coroutines: frames (built once
per event, see `core.frames`) are appended to a pending list and written with
one `transport.write` per loop iteration, so a burst of events costs one
system call per connection instead of one per event. One callback per loop
iteration (`_Flusher`) flushes every connection that has frames queued,
instead of one `call_soon` handle per connection. The bound on unsent
bytes (pending plus the transport's buffer) is the slow-consumer rule: past
it the connection is closed with 4008 and its buffers dropped.

`write_delay_ms` makes that callback run after the delay instead of in the
next iteration: one timer per flush for every connection, which gather more
frames per write meanwhile. Connections that opted into batched frames queue
the events themselves and frame them at flush (`core.batches`), building each
distinct array once per flush for every recipient that shares it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from autosdlc_ws.broker.base import BrokerEvent, HistoryResult, LogPosition
from autosdlc_ws.broker.trail import SendTrail
from autosdlc_ws.core.batches import BatchMemo, Queued, frames_for
from autosdlc_ws.core.connection_core import (
    Action,
    AddSubscription,
    AuthAccepted,
    CheckTypeLimit,
    Close,
    ConnectionCore,
    Publish,
    RemoveSubscription,
    Send,
    SendSnapshot,
    SubscriptionRecord,
)
from autosdlc_ws.core.envelope import EncodedEvent, dumps, make_message
from autosdlc_ws.core.frames import OP_TEXT, build_frame
from autosdlc_ws.core.last_values import as_snapshot, still_live
from autosdlc_ws.core.partitions import affected, partition_scope
from autosdlc_ws.core.subscriptions import Subscription
from autosdlc_ws.errors import BrokerUnavailable, CloseCode, ErrorCode, GatewayError
from autosdlc_ws.server.logs import connection_id_var, subject_var

if TYPE_CHECKING:
    from autosdlc_ws.server.connection_host import ConnectionHost

log = logging.getLogger("autosdlc_ws.connection")

REPLAY_CHUNK = 512
#: Frames one connection handles before letting the loop serve the others.
YIELD_EVERY = 16


class _Flusher:
    """Flushes, from one callback, every connection that queued frames since
    the last one (in the order they first queued): in the next loop iteration,
    or `delay_s` after the first frame queued."""

    __slots__ = ("__weakref__", "_delay_s", "_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float = 0.0) -> None:
        self._loop = loop
        self._delay_s = delay_s
        self._dirty: list[Connection] = []
        self._scheduled = False

    def add(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            if self._delay_s:
                self._loop.call_later(self._delay_s, self._run)
            else:
                self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        memo = BatchMemo()  # arrays shared by the batch connections flushed now
        for conn in dirty:
            try:
                conn._flush(memo)
            except Exception as exc:  # one connection's failure must not stall the others
                self._loop.call_exception_handler(
                    {"message": "error flushing a connection", "exception": exc, "connection": conn})


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Flusher]] = weakref.WeakKeyDictionary()


def _flusher_for(loop: asyncio.AbstractEventLoop, delay_s: float = 0.0) -> _Flusher:
    by_delay = _flushers.get(loop)
    if by_delay is None:
        by_delay = _flushers[loop] = {}
    flusher = by_delay.get(delay_s)
    if flusher is None:
        flusher = by_delay[delay_s] = _Flusher(loop, delay_s)
    return flusher


class Connection:
    def __init__(
        self,
        host: ConnectionHost,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        core: ConnectionCore,
        remote: str,
    ) -> None:
        self.host = host
        self.ws = ws
        self.transport = transport
        self.core = core
        self.remote = remote
        self.connected_at_ms = host.now_ms()
        self.bytes_in = 0
        self.bytes_out = 0
        self.frames_out = 0
        self.closing = False
        self._loop = asyncio.get_running_loop()
        self._flusher = _flusher_for(self._loop, host.settings.write_delay_ms / 1000)
        self._pending: list[Queued] = []
        self._has_events = False  # `_pending` holds events to frame at flush (batch connections)
        self._pending_bytes = 0
        self._flush_scheduled = False
        self._limit = host.settings.outgoing_buffer_bytes
        self._replay_buffer: list[tuple[EncodedEvent, BrokerEvent]] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_ms: int | None = None  # what `_deadline` is armed for
        self.session_position: LogPosition | None = None  # log head when the session began
        #: On a partitioned log, the order events were sent in (exact resume,
        #: `broker.trail`): this connection's own entries (replays, held-back events),
        #: and the worker's trail from `live_from` on for its live deliveries.
        self.trail = SendTrail(host.log_partitions) if host.log_partitions > 1 else None
        self.live_from: int | None = host.worker_trail.count if host.worker_trail is not None else None
        #: The trail of the connection this one took the session over from, on this worker.
        self.inherited_trail: dict[str, Any] | None = None
        self.session_key: str | None = None  # the session this connection holds
        self.superseded = False  # another connection resumed this session
        #: Whether a write of this connection has claimed its session record (`server.sessions`).
        self.session_claimed = False
        core.owner = self

    # --- the write path -----------------------------------------------------

    @property
    def gzip(self) -> bool:
        return self.core.gzip

    def deliver(self, out: EncodedEvent, record: BrokerEvent) -> None:
        """Hot path: queue one shared event frame. Never awaits."""
        if self._replay_buffer is not None:
            self._replay_buffer.append((out, record))
            return
        # `_enqueue` inlined: this runs once per delivery.
        if self.closing:
            return
        core = self.core
        if core.batch:
            self._pending.append(out)  # framed at flush, with the events queued beside it
            self._pending_bytes += len(out.text_frame)
            self._has_events = True
        else:
            frame = out.frame_for(True) if core.gzip else out.text_frame
            self._pending.append(frame)
            self._pending_bytes += len(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._flusher.add(self)

    def trail_json(self) -> dict[str, Any] | None:
        """The send order for the session record (None on an unpartitioned log)."""
        if self.trail is None:
            return None
        self._absorb_live()
        self.live_from = self.host.worker_trail.count if self.host.worker_trail is not None else None
        return self.trail.to_json()

    def _absorb_live(self) -> None:
        """Take the worker's trail since this connection's live deliveries began."""
        worker = self.host.worker_trail
        if self.trail is not None and worker is not None and self.live_from is not None:
            self.trail.absorb_since(worker, self.live_from)
        self.live_from = None

    def _live_again(self) -> None:
        """A replay or snapshot window is over: live deliveries follow the worker's order."""
        if self.host.worker_trail is not None:
            self.live_from = self.host.worker_trail.count

    def send_message(self, message: dict[str, Any]) -> None:
        self._enqueue(build_frame(OP_TEXT, dumps(message)))

    def _enqueue_logged(self, out: EncodedEvent, record: BrokerEvent) -> None:
        """Queue a log event off the hot path (replay, held-back live events)."""
        if self.trail is not None and not self.closing:
            self.trail.record(record)
        self._enqueue_event(out)

    def _enqueue_event(self, out: EncodedEvent) -> None:
        """Queue an event off the hot path (replay, snapshot, held-back live events)."""
        if self.core.batch:
            if self.closing:
                return
            self._pending.append(out)
            self._pending_bytes += len(out.text_frame)
            self._has_events = True
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._flusher.add(self)
        else:
            self._enqueue(out.frame_for(self.core.gzip))

    def _enqueue(self, frame: bytes) -> None:
        if self.closing:
            return
        self._pending.append(frame)
        self._pending_bytes += len(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._flusher.add(self)

    def _flush(self, memo: BatchMemo | None = None) -> None:
        self._flush_scheduled = False
        pending = self._pending
        if self.closing or not pending:
            return
        transport = self.transport
        if transport.is_closing():
            pending.clear()
            self._pending_bytes = 0
            self._has_events = False
            return
        # Falling behind means the bytes written earlier are still unsent when more
        # arrive. The burst being flushed is not counted: otherwise one loop
        # iteration queueing more than the limit (a 1000-event batch) would close
        # every consumer, even those that keep up. Memory per connection stays
        # under the limit plus one burst.
        if transport.get_write_buffer_size() > self._limit:
            self._slow_consumer()
            return
        if self._has_events:  # a batch connection's queue: events are framed now
            self._has_events = False
            if len(pending) == 1:  # one due event (the common load): its shared plain frame
                event: EncodedEvent = pending[0]  # type: ignore[assignment]
                data: bytes = event.frame_for(True) if self.core.gzip else event.text_frame
                count = 1
            else:
                frames = self._batched_frames(memo)
                count = len(frames)
                data = frames[0] if count == 1 else b"".join(frames)
        else:
            count = len(pending)
            data = pending[0] if count == 1 else b"".join(pending)  # type: ignore[assignment,arg-type]
        size = len(data)
        # Per-connection counts only: the gateway sums them at scrape time, so the
        # flush pays no lookups for the metrics (benchmarks/bench_metrics.py).
        self.frames_out += count
        self.bytes_out += size
        pending.clear()
        self._pending_bytes = 0
        transport.write(data)

    def _batched_frames(self, memo: BatchMemo | None) -> list[bytes]:
        settings = self.host.settings
        if memo is not None:
            return memo.frames(self._pending, self.core.gzip, settings.gzip_threshold_bytes,
                               settings.max_batch_bytes)
        return frames_for(self._pending, gzip=self.core.gzip, gzip_threshold=settings.gzip_threshold_bytes,
                          max_batch_bytes=settings.max_batch_bytes)

    def queue_depth_bytes(self) -> int:
        return self._pending_bytes + (self.transport.get_write_buffer_size() if not self.transport.is_closing() else 0)

    def _slow_consumer(self) -> None:
        log.warning("slow consumer closed conn=%s subject=%s", self.core.connection_id, self.subject)
        self.host.slow_consumer_closed()
        self._pending.clear()
        self._pending_bytes = 0
        self._has_events = False
        self.closing = True
        self._loop.create_task(self._close_ws(CloseCode.SLOW_CONSUMER, "slow consumer", abort_after=1.0))

    async def drain(self, low_water: int) -> bool:
        """Wait until what is queued has mostly reached the socket (replay pacing)."""
        self._flush()
        deadline = self._loop.time() + self.host.settings.shutdown_grace_s * 2
        while not self.closing and not self.transport.is_closing():
            if self.transport.get_write_buffer_size() <= low_water:
                return True
            if self._loop.time() > deadline:
                self._slow_consumer()
                return False
            await asyncio.sleep(0.002)
        return False

    async def close(self, code: int, reason: str) -> None:
        """Flush what is owed, then close with `code`."""
        if self.closing:
            return
        self._flush()
        self.closing = True
        await self._close_ws(code, reason, abort_after=self.host.settings.shutdown_grace_s)

    async def _close_ws(self, code: int, reason: str, *, abort_after: float) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), abort_after)
        except (TimeoutError, ConnectionError, RuntimeError):
            # A peer that does not take the close frame in time is cut off. aiohttp
            # has already *closed* the transport on the timeout, and a closing
            # transport waits for its unsent buffer forever when the peer never
            # reads: the socket, and the handler waiting for EOF, would leak.
            self.transport.abort()
        except asyncio.CancelledError:
            self.transport.abort()
            raise
        finally:
            if not self.transport.is_closing():
                self.transport.abort()

    # --- identity -------------------------------------------------------------

    @property
    def subject(self) -> str | None:
        return self.core.principal.subject if self.core.principal else None

    # --- the read path --------------------------------------------------------

    def _log_incoming(self, payload: str | bytes) -> None:
        text = payload if isinstance(payload, str) else "<binary frame>"
        self.host.log_message(
            "in", {"type": self.core.last_type, "raw": text[:2000]},
            subject=self.subject, connection_id=self.core.connection_id)

    def set_log_context(self) -> None:
        connection_id_var.set(self.core.connection_id)
        subject_var.set(self.subject)

    async def run(self) -> None:
        self.set_log_context()
        self._schedule_deadline()
        host = self.host
        handled = 0
        try:
            async for msg in self.ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    size = len(msg.data)
                    self.bytes_in += size
                    actions = self.core.receive(
                        msg.data, binary=msg.type is WSMsgType.BINARY,
                        now_ms=host.now_ms(), mono_s=time.monotonic(),
                    )
                    host.frame_received(size, self.core.last_type)
                    if host.logs_messages:
                        self._log_incoming(msg.data)
                    await self.execute(actions)
                    if self.closing:
                        break
                    handled += 1
                    if handled % YIELD_EVERY == 0:
                        # Frames already buffered are handed out without suspending:
                        # a client sending as fast as it can would otherwise hold the
                        # loop for its whole read buffer while everyone else waits.
                        await asyncio.sleep(0)
                    # Idle connections wait here for their next frame: keep no
                    # reference to the last one (its text, parsed request, replies).
                    msg = actions = None  # type: ignore[assignment]
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            if self._deadline is not None:
                self._deadline.cancel()

    async def execute(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                msg = action.message
                if msg["type"] == "error":
                    self.host.record_error(msg["data"]["code"], self.core.last_type, msg["data"]["message"])
                if self.host.logs_messages:
                    self.host.log_message("out", msg, subject=self.subject,
                                          connection_id=self.core.connection_id)
                self.send_message(msg)
            elif isinstance(action, AddSubscription):
                if self.superseded:  # being closed: its session lives on elsewhere
                    continue
                # a partitioned log: read what it needs before it is indexed and acknowledged
                await self.host.prepare_subscription(action.subscription)
                self.host.subscription_added(self, action.subscription)
            elif isinstance(action, RemoveSubscription):
                self.host.subscription_removed(self, action.subscription_id)
            elif isinstance(action, SendSnapshot):
                if not self.superseded:
                    await self.send_snapshot(action.subscription)
            elif isinstance(action, Publish):
                await self._publish(action)
            elif isinstance(action, AuthAccepted):
                await self.host.accept_in_band_auth(self, action)
            elif isinstance(action, CheckTypeLimit):
                # one shared-limits call per message of a limited type, none otherwise
                wait_ms = await self.host.take_type_limit(action.charge)
                await self.execute(self.core.type_limit_answer(action, wait_ms, self.host.now_ms()))
            elif isinstance(action, Close):
                await self.close(action.code, action.reason)
        self._schedule_deadline()

    async def _publish(self, action: Publish) -> None:
        principal = self.core.principal
        if principal is not None and self.core.identity_limit_external:
            # the identity's bucket, shared by its connections on every worker: one
            # broker call per publish (the publish itself is one more), none per delivery
            wait_ms = await self.host.take_identity_publish(principal.identity)
            refused = self.core.identity_rate_limit(action.event["type"], wait_ms, action.correlation_id,
                                                    self.host.now_ms())
            if refused:
                await self.execute(refused)
                return
        try:
            await self.host.publish([action.event])
        except BrokerUnavailable as exc:
            self.send_message(make_message(
                "error", {"code": ErrorCode.INTERNAL.value, "message": f"event not accepted: {exc}; retry later",
                          "retryAfterMs": 1000},
                now_ms=self.host.now_ms(), correlation_id=action.correlation_id))

    def _schedule_deadline(self) -> None:
        deadline_ms = self.core.next_deadline_ms()
        if self._deadline is not None:
            if deadline_ms == self._deadline_ms and not self.closing and not self._deadline.cancelled():
                return  # already armed for this deadline (a cancelled timer stays in the loop's heap)
            self._deadline.cancel()
            self._deadline = None
        if deadline_ms is None or self.closing:
            return
        delay = max(0.0, (deadline_ms - self.host.now_ms()) / 1000)
        self._deadline = self._loop.call_later(delay + 0.001, self._on_deadline)
        self._deadline_ms = deadline_ms

    def _on_deadline(self) -> None:
        self._deadline = None
        actions = self.core.tick(self.host.now_ms())
        if actions:
            self._loop.create_task(self.execute(actions))
        else:
            self._schedule_deadline()

    # --- snapshot on subscribe -------------------------------------------------

    async def send_snapshot(self, sub: Subscription[Any]) -> None:
        """Send `sub`'s last values (`metadata.snapshot: true`), then go live.

        Called right after `sub` entered the index, before any await: live
        events from then on are held back (the resume mechanism) and released
        after the snapshot, except those the snapshot covers (`still_live`).
        The broker answers only once this worker has delivered everything up
        to the snapshot's position, so each matching event is sent exactly once,
        in the snapshot (or superseded there) or live."""
        nested = self._replay_buffer is not None  # never today: a resume completes first
        if not nested:
            self._absorb_live()
            self._replay_buffer = []
        position: LogPosition | None = None
        try:
            result = await self.host.snapshot(sub)
            position = result.position
            threshold = self.host.settings.gzip_threshold_bytes
            sent = 0
            for record in result.events:
                # the subscription check already makes every match readable; this
                # per-event check keeps it so whatever the grants become
                if not self.core.may_read(record.event):
                    continue
                out = EncodedEvent(as_snapshot(record.event), gzip_threshold=threshold)
                self._enqueue_event(out)
                if self.host.logs_messages:
                    self.host.log_message("out", out.message, subject=self.subject,
                                          connection_id=self.core.connection_id)
                sent += 1
                if sent % REPLAY_CHUNK == 0 and not await self.drain(self._limit // 4):
                    return
            log.debug("snapshot conn=%s sub=%s sent=%d", self.core.connection_id, sub.id, sent)
        except GatewayError as exc:
            log.warning("snapshot failed conn=%s: %s", self.core.connection_id, exc)
            self.send_message(make_message(
                "subscription_update",
                {"subscriptionId": sub.id, "status": "reset", "reason": f"snapshot unavailable: {exc}"},
                now_ms=self.host.now_ms()))
        finally:
            held = [(out, record) for out, record in self._replay_buffer or []
                    if still_live(out.message, position is not None and position.covers(record),
                                  sub.types, sub.filters)]
            if nested:
                self._replay_buffer = held
            else:
                self._replay_buffer = None
                for out, record in held:
                    self._enqueue_logged(out, record)
                self._live_again()

    # --- resume ---------------------------------------------------------------

    async def resume(self, records: list[SubscriptionRecord],
                     load_history: Callable[[], Awaitable[HistoryResult]]) -> None:
        """Restore subscriptions, replay what the session missed, then go live.

        Live events that arrive meanwhile are held back and released after the
        replay, skipping those the replay already covered (offset at or below
        the history's end). History is read only after the subscriptions are in
        the index, so no event can fall between the replay and live delivery.

        A log that exists but cannot be read right now (`BrokerUnavailable`: Redis
        down, its pool exhausted by a resume storm) is not lost history: the error
        goes to the caller, which closes 1013, and the client resumes again from the
        same event. Live events stay held back until then, so the client's last
        event id never runs ahead of what it was sent in order."""
        self._absorb_live()
        self._replay_buffer = []
        last: dict[int, int] = {}  # partition -> last offset replayed
        buffered: list[tuple[EncodedEvent, BrokerEvent]] = []
        unreadable = False
        try:
            await self.execute(self.core.restore(records, self.host.now_ms()))
            history = await load_history()
            subs = list(self.core.subscriptions.values())
            threshold = self.host.settings.gzip_threshold_bytes
            sent = 0
            for record in history.events:
                event = record.event
                data = event.get("data")
                if not isinstance(data, dict) or not any(s.matches(event["type"], data) for s in subs):
                    continue
                self._enqueue_logged(EncodedEvent(event, gzip_threshold=threshold), record)
                sent += 1
                if sent % REPLAY_CHUNK == 0 and not await self.drain(self._limit // 4):
                    return
            # Held-back live events arrived after this connection began, so every one
            # the replay did not cover is new to the client: with no replay, all are.
            for record in history.events:
                last[record.partition] = record.offset
            if not history.complete:
                now = self.host.now_ms()
                for sub in subs:
                    if not affected(partition_scope(sub.types, sub.filters, self.host.log_partitions),
                                    history.lost):
                        continue
                    self.send_message(make_message(
                        "subscription_update",
                        {"subscriptionId": sub.id, "status": "reset",
                         "reason": history.reason or "history unavailable"}, now_ms=now))
            log.info("resumed conn=%s session=%s replayed=%d complete=%s",
                     self.core.connection_id, self.core.session_id, sent, history.complete)
        except BrokerUnavailable:
            unreadable = True  # live events stay held back: none may reach the client before the close
            raise
        except GatewayError as exc:
            log.warning("resume failed conn=%s: %s", self.core.connection_id, exc)
            last = {}
            now = self.host.now_ms()
            for sub in self.core.subscriptions.values():
                self.send_message(make_message(
                    "subscription_update",
                    {"subscriptionId": sub.id, "status": "reset", "reason": f"history unavailable: {exc}"},
                    now_ms=now))
        finally:
            if not unreadable:
                buffered, self._replay_buffer = self._replay_buffer or [], None
        for out, record in buffered:
            if record.offset > last.get(record.partition, -1):
                self._enqueue_logged(out, record)
        self._live_again()
