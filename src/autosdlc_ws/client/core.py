"""The WebSocket client's protocol state machine, without I/O.

The driver (`client.driver.CoreDriver`) tells it what happened: a socket opened,
a frame arrived, the socket ended with a close code, a timer fired, the token provider
answered, the application called subscribe/unsubscribe/send/close. Each input comes with
the current wall-clock time in ms and returns the actions (`client.actions`) the driver
carries out in order: write a frame, deliver an event, resolve or fail a request, start a
timer, reconnect after a delay, stop. It mirrors the server's `ConnectionCore`, so the
contract's client side (in-band auth and refresh, re-subscribing after a lost session,
the resume position and duplicate suppression, the bounded offline queue, request
correlation and timeouts, backoff and the close-code rules) is tested with plain values.
How the server's replies change subscriptions lives in `client.replies`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autosdlc_ws.client.actions import (
    PING_TIMER,
    REFRESH_TIMER,
    REQUEST_TIMER,
    RESEND_TIMER,
    Action,
    CancelTimer,
    Deliver,
    DropSocket,
    FailRequest,
    Reconnect,
    ReportError,
    ResolveRequest,
    SendFrame,
    StartTimer,
    StateChanged,
    Stopped,
)
from autosdlc_ws.client.backoff import ReconnectPolicy
from autosdlc_ws.client.close_rules import close_outcome
from autosdlc_ws.client.errors import (
    AuthenticationFailed,
    AutoSDLCError,
    ClientClosed,
    ConnectError,
    ConnectionClosed,
    MessageTooLarge,
    ReconnectFailed,
    RequestTimeout,
)
from autosdlc_ws.client.events import ConnectionState, FrameError, decode_frames, is_event, new_id
from autosdlc_ws.client.link import Link, LinkPhase
from autosdlc_ws.client.outgoing import OutgoingFrames
from autosdlc_ws.client.queue import QueuedFrame, SeenIds
from autosdlc_ws.client.reconnect import ReconnectPlan
from autosdlc_ws.client.refresh import TokenRefresh
from autosdlc_ws.client.replies import Replies
from autosdlc_ws.client.requests import PendingRequest, RequestKind, dumps, new_request
from autosdlc_ws.client.stats import ClientStats
from autosdlc_ws.client.subscriptions import (
    Subscription,
    SubscriptionInfo,
    SubscriptionRegistry,
    normalise_filters,
)

log = logging.getLogger("autosdlc_ws.client")

DEFAULT_HEARTBEAT_S = 25.0


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """The client's settings that shape its protocol decisions (see `AutoSDLCWebSocket`)."""

    reconnect: ReconnectPolicy | None = field(default_factory=ReconnectPolicy)
    has_token_provider: bool = False
    refresh_before_s: float | None = 60.0
    request_timeout_s: float = 10.0
    heartbeat_override_s: float | None = None
    pong_timeout_s: float = 10.0
    outbox_size: int = 1000
    dedup_size: int = 10_000
    max_message_bytes: int = 16 * 1024 * 1024
    compression: str | None = None
    batch: bool = False  # ask for batched frames (`?batch=1`): several events per frame
    rng: Callable[[], float] = random.random  # the backoff's jitter


class ClientCore:
    """One client's protocol state over all its connections: plain values in, actions out."""

    def __init__(self, config: CoreConfig, *, session_id: str | None = None,
                 last_event_id: str | None = None) -> None:
        self.config = config
        self.stats = ClientStats()
        self.state = ConnectionState.CLOSED
        self.started = False
        self.closing = False
        self.error: AutoSDLCError | None = None  # why the client stopped by itself
        self.session_id = session_id
        self.connection_id: str | None = None
        self.last_event_id = last_event_id  # the resume position
        self.server_heartbeat_s: float | None = None
        self.max_frame_bytes: int | None = None  # the server's limits.maxFrameBytes
        self._resume_requested = session_id is not None
        self._connections = 0
        self._link: Link | None = None
        self._adopt_resumed = False
        self.subs = SubscriptionRegistry()
        self.outgoing = OutgoingFrames(config.outbox_size)
        self._seen = SeenIds(config.dedup_size)
        self._replies = Replies(self)
        self._reconnects = ReconnectPlan(config.reconnect, config.rng)
        self._refresh = TokenRefresh(config.refresh_before_s, config.has_token_provider)

    # ------------------------------------------------------------------ queries

    @property
    def heartbeat_interval_s(self) -> float:
        """Seconds between application pings: the override, else the server's `heartbeatInterval`."""
        if self.config.heartbeat_override_s is not None:
            return self.config.heartbeat_override_s
        return self.server_heartbeat_s or DEFAULT_HEARTBEAT_S

    def liveness_timeout_s(self) -> float | None:
        """Silence after which an open connection is declared dead (None: never)."""
        interval = self.heartbeat_interval_s
        return interval + self.config.pong_timeout_s if interval > 0 else None

    @property
    def handshaking(self) -> bool:
        return self._link is not None and self._link.phase is not LinkPhase.OPEN

    @property
    def adopting_resumed(self) -> bool:
        """Resuming a session given to the constructor: its subscriptions are adopted."""
        return self._adopt_resumed

    def subscriptions(self) -> dict[str, SubscriptionInfo]:
        return self.subs.infos()

    def upgrade_params(self) -> dict[str, str]:
        """Query parameters of the next upgrade: compression, batching and the resume position."""
        params: dict[str, str] = {}
        if self.config.compression:
            params["compression"] = self.config.compression
        if self.config.batch:
            params["batch"] = "1"
        if self.session_id:
            params["session_id"] = self.session_id
            if self.last_event_id:
                params["last_event_id"] = self.last_event_id
        return params

    def check_usable(self) -> None:
        if self.error is not None:
            raise self.error
        if self.closing:
            raise ClientClosed("the client was closed")
        if not self.started:
            raise ClientClosed("not connected: call connect() (or use `async with`) first")

    @property
    def finished(self) -> bool:
        return self.closing or self.error is not None

    # ------------------------------------------------------------------ connection lifecycle

    def start(self) -> list[Action]:
        """The first connection attempt begins."""
        if self.finished:
            raise ClientClosed("this client was closed; create a new one")
        self.started = True
        return self._set_state(ConnectionState.CONNECTING)

    def socket_opened(self) -> list[Action]:
        """The upgrade succeeded; the handshake frames follow."""
        self._link = Link(previous_session=self.session_id)
        self._adopt_resumed = False
        return []

    def receive(self, payload: str | bytes, now_ms: int) -> list[Action]:
        """A frame from the server: text JSON, or gzip of it in a binary frame; an
        object, or (batched frames) an array of them, each handled as if alone."""
        link = self._link
        if link is None:  # no socket, or the client stopped
            return []
        try:
            frames = decode_frames(payload, binary=isinstance(payload, bytes),
                                   max_decompressed=self.config.max_message_bytes)
        except FrameError as exc:
            log.warning("ignoring a bad frame from the server: %s", exc)
            return []
        if len(frames) == 1:
            return self._receive_one(frames[0], link, now_ms)
        actions: list[Action] = []
        for frame in frames:
            if self._link is not link:  # an earlier envelope ended this connection
                break
            actions += self._receive_one(frame, link, now_ms)
        return actions

    def _receive_one(self, frame: dict[str, Any], link: Link, now_ms: int) -> list[Action]:
        if link.phase is LinkPhase.AWAIT_CONNECT:
            return self._on_connect(frame, link, now_ms)
        type_: str = frame["type"]
        if is_event(type_):  # the hot path, inline
            event_id = frame.get("id")
            if isinstance(event_id, str):
                if not self._seen.add(event_id):
                    self.stats.duplicates_dropped += 1
                    return []
                meta = frame.get("metadata")
                # A snapshot event is older than the live stream: resuming after it would
                # replay from the past, so only live events move the resume position.
                if not (meta and meta.get("snapshot") is True):
                    self.last_event_id = event_id
            self.stats.events_received += 1
            return [Deliver(type_, frame, True)]
        if link.phase is LinkPhase.AWAIT_AUTH:
            if type_ == "auth_success":
                return self._on_auth_success(frame, link, now_ms)
            if type_ == "auth_failure":
                data = frame.get("data") or {}
                return [DropSocket(), *self.attempt_failed(AuthenticationFailed(
                    401, str(data.get("code", "unauthorized")), str(data.get("message", ""))), now_ms)]
        return self._replies.on_control(type_, frame, link, now_ms)

    def _on_connect(self, frame: dict[str, Any], link: Link, now_ms: int) -> list[Action]:
        data = frame.get("data")
        if frame.get("type") != "connect" or not isinstance(data, dict):
            error = ConnectError(f"expected a connect frame, got {frame.get('type')!r}")
            return [DropSocket(), *self.attempt_failed(error, now_ms)]
        link.resumed = data.get("resumed") is True
        self.session_id = str(data.get("sessionId"))
        self.connection_id = str(data.get("connectionId"))
        heartbeat_ms = data.get("heartbeatInterval")
        if isinstance(heartbeat_ms, int | float) and heartbeat_ms > 0:
            self.server_heartbeat_s = heartbeat_ms / 1000
        limits = data.get("limits")
        if isinstance(limits, dict) and isinstance(limits.get("maxFrameBytes"), int):
            self.max_frame_bytes = limits["maxFrameBytes"]
        link.phase = LinkPhase.AWAIT_AUTH
        return [Deliver("connect", frame, False)]

    def _on_auth_success(self, frame: dict[str, Any], link: Link, now_ms: int) -> list[Action]:
        """Authenticated: restore the session's state, flush the queue, and the client is OPEN."""
        expires = (frame.get("data") or {}).get("expiresAt")
        link.expires_at_ms = expires if isinstance(expires, int) else None
        actions: list[Action] = [Deliver("auth_success", frame, False)]
        first_connection = self._connections == 0
        self._connections += 1
        # subscriptions of a session named in __init__ (another process's) are adopted, not removed
        self._adopt_resumed = first_connection and self._resume_requested and link.resumed
        self.stats.connects += 1
        if not first_connection:
            self.stats.reconnects += 1
            if link.resumed:
                self.stats.resumed += 1
        if not link.resumed and link.previous_session is not None \
                and (not first_connection or self._resume_requested):
            actions += self._replies.session_lost(link.previous_session, now_ms)
        link.phase = LinkPhase.OPEN
        actions += self.outgoing.flush()
        if link.resumed and not self._adopt_resumed:
            actions += self._replies.start_resume_check(link, now_ms)
        link.opened_ms = now_ms
        actions += self._set_state(ConnectionState.OPEN)
        if self.heartbeat_interval_s > 0:
            actions.append(StartTimer(PING_TIMER, self.heartbeat_interval_s))
        return actions + self._refresh.opened(link.expires_at_ms, now_ms)

    def heartbeat_missed(self, silent_s: float, now_ms: int) -> list[Action]:
        """Nothing arrived for `silent_s` seconds on an open connection: it is dead."""
        self.stats.heartbeat_timeouts += 1
        return self.connection_lost(1006, f"nothing received for {silent_s} s (heartbeat timeout)", now_ms)

    def connection_lost(self, code: int, reason: str, now_ms: int) -> list[Action]:
        """The socket ended with close `code` (1006 when it just broke)."""
        link = self._link
        if link is None or self.finished:
            return []
        if link.phase is not LinkPhase.OPEN:
            error = close_outcome(code, reason, None, self.config.has_token_provider)
            if error is None:
                during = "connection closed" if self.state is ConnectionState.CONNECTING else "closed"
                error = ConnectError(f"{during} during the handshake: {code} {reason}")
            return self.attempt_failed(error, now_ms)
        self._link = None
        actions: list[Action] = [CancelTimer(PING_TIMER), CancelTimer(REFRESH_TIMER),
                                 *self._connection_gone()]
        self.stats.last_close_code = code
        up_for_s = (now_ms - link.opened_ms) / 1000
        log.info("connection lost (%s %s) after %.1f s", code, reason, up_for_s)
        fatal = close_outcome(code, reason, link.disconnect, self.config.has_token_provider)
        if fatal is not None or not self._reconnects.enabled:
            return actions + self._stop(fatal or ConnectionClosed(code, reason))
        self._reconnects.connection_lost(up_for_s)
        return actions + self._set_state(ConnectionState.RECONNECTING) + self._next_attempt()

    def attempt_failed(self, error: AutoSDLCError, now_ms: int) -> list[Action]:
        """A connection attempt failed before it was open (refused upgrade, handshake)."""
        if self.finished:
            return []
        self._link = None
        actions = self._connection_gone()
        retry = isinstance(error, ConnectError) and not isinstance(error, AuthenticationFailed)
        if self.state is ConnectionState.CONNECTING or not retry or not self._reconnects.enabled:
            return actions + self._stop(error)
        assert isinstance(error, ConnectError)
        self._reconnects.attempt_failed(error)
        return actions + self._next_attempt()

    def _next_attempt(self) -> list[Action]:
        delay = self._reconnects.next_delay()
        return self._stop(delay) if isinstance(delay, ReconnectFailed) else [Reconnect(delay)]

    def fail(self, error: AutoSDLCError) -> list[Action]:
        """Stop for good with `error` (the driver hit a bug of its own)."""
        return [] if self.finished else self._stop(error)

    def close(self) -> list[Action]:
        """The application closes the client."""
        if self.closing:
            return []
        self.closing = True
        return self._finish(None, ClientClosed("the client was closed"))

    def _stop(self, error: AutoSDLCError) -> list[Action]:
        log.warning("client stopped: %s", error)
        self.error = error
        return [ReportError(error), *self._finish(error, error)]

    def _finish(self, error: AutoSDLCError | None, pending_error: AutoSDLCError) -> list[Action]:
        actions: list[Action] = []
        pendings, dropped = self.outgoing.clear()
        for pending in pendings:
            actions += self._settle(pending, None, pending_error, 0)
        if dropped:
            log.warning("%d queued outgoing messages dropped", dropped)
        self._link = None
        self._refresh.awaiting_token = False
        return [*actions, *self._set_state(ConnectionState.CLOSED), Stopped(error)]

    def _connection_gone(self) -> list[Action]:
        self._refresh.awaiting_token = False  # the next connection presents a fresh token
        return self.outgoing.connection_gone()

    def _set_state(self, state: ConnectionState) -> list[Action]:
        if state is self.state:
            return []
        self.state = state
        log.debug("state %s", state.value)
        return [StateChanged(state)]

    # ------------------------------------------------------------------ timers and tokens

    def timer_fired(self, name: str, now_ms: int) -> list[Action]:
        if self.finished:
            return []
        if name == PING_TIMER:
            if self._link is None or self._link.phase is not LinkPhase.OPEN:
                return []
            ping = {"id": new_id("ping"), "type": "ping", "timestamp": now_ms, "data": {}}
            return [SendFrame(dumps(ping)), StartTimer(PING_TIMER, self.heartbeat_interval_s)]
        if name == REFRESH_TIMER:
            if self._link is None:
                return []
            return self._refresh.due()
        if name.startswith(REQUEST_TIMER):
            return self._request_timed_out(name[len(REQUEST_TIMER):], now_ms)
        if name.startswith(RESEND_TIMER):
            return self._resend(name[len(RESEND_TIMER):])
        return []

    def _request_timed_out(self, request_id: str, now_ms: int) -> list[Action]:
        pending = self.outgoing.get(request_id)
        if pending is None:
            return []
        timeout = self.config.request_timeout_s
        return self.rejected(pending, RequestTimeout(
            f"no answer to {pending.message_type} within {timeout} s"), now_ms)

    def _resend(self, request_id: str) -> list[Action]:
        """A re-subscribe the server rate-limited: queue it again, and send it when open."""
        if self.outgoing.get(request_id) is None:
            return []
        self.outgoing.requeue(request_id)
        return self.outgoing.flush() if self._open_now else []

    def token_fetched(self, token: str, now_ms: int) -> list[Action]:
        """The token provider's answer to `FetchToken`: present it in-band."""
        if not self._refresh.awaiting_token or self.finished:
            return []
        self._refresh.awaiting_token = False
        _, actions = self._request(RequestKind.AUTH, "auth_request", {"token": token}, now_ms, bounded=False)
        return actions

    def token_fetch_failed(self, error: BaseException, now_ms: int) -> list[Action]:
        if not self._refresh.awaiting_token or self.finished:
            return []
        self._refresh.awaiting_token = False
        return self._refresh_failed_with(error, now_ms)

    def _refresh_failed_with(self, error: BaseException, now_ms: int) -> list[Action]:
        report = error if isinstance(error, AutoSDLCError) else AutoSDLCError(f"token refresh failed: {error!r}")
        return [ReportError(report), *self._refresh.failed(now_ms)]

    # ------------------------------------------------------------------ application calls

    def subscribe(self, events: Sequence[str] | str, filters: Mapping[str, str | Sequence[str]] | None,
                  now_ms: int, *, snapshot: bool = False) -> tuple[str, list[Action]]:
        """Returns the request id; its `ResolveRequest` answer's `subscriptionId` is the
        subscription's id for the caller."""
        self.check_usable()
        sub = Subscription(None, None, (events,) if isinstance(events, str) else tuple(events),
                           normalise_filters(filters), snapshot)
        return self._request(RequestKind.SUBSCRIBE, "subscribe", sub.request_data(), now_ms, sub=sub)

    def unsubscribe(self, caller_id: str, now_ms: int) -> tuple[str | None, list[Action]]:
        """Returns the request id to await, or None when there is nothing to undo on the server."""
        self.check_usable()
        sub = self.subs.pop(caller_id)
        if sub is None:
            raise KeyError(f"no subscription {caller_id!r}")
        self.outgoing.drop_unsent_restores(sub)
        if sub.server_id is None:
            return None, []  # a re-subscribe in flight; its answer finds no owner and is removed then
        return self._request(RequestKind.UNSUBSCRIBE, "unsubscribe",
                             {"subscriptionId": sub.server_id}, now_ms)

    def send(self, message: Mapping[str, Any], now_ms: int) -> tuple[str, list[Action]]:
        """An application frame (`id`, `timestamp`, `data` filled in when absent); queued
        (bounded: `QueueFull`) while not open. Returns its id."""
        self.check_usable()
        obj = dict(message)
        type_ = obj.get("type")
        if not isinstance(type_, str):
            raise ValueError("a message needs a string type")
        obj.setdefault("id", new_id("evt" if is_event(type_) else "msg"))
        obj.setdefault("timestamp", now_ms)
        obj.setdefault("data", {})
        text = dumps(obj)
        size = len(text.encode())
        if self.max_frame_bytes is not None and size > self.max_frame_bytes:
            raise MessageTooLarge(f"message of {size} bytes exceeds the server's "
                                  f"maxFrameBytes {self.max_frame_bytes}")
        return str(obj["id"]), self.submit(QueuedFrame(text))

    def abandon_request(self, request_id: str) -> list[Action]:
        """The caller awaiting `request_id` stopped waiting (cancelled)."""
        if self.outgoing.forget(request_id) is None:
            return []
        return [CancelTimer(REQUEST_TIMER + request_id)]

    def writes_failed(self, items: Sequence[QueuedFrame]) -> list[Action]:
        """Frames the driver could not write (the socket is going away): keep them, in
        order, for the next connection."""
        if not self.finished:
            self.outgoing.writes_failed(items)
        return []

    # ------------------------------------------------------------------ requests

    @property
    def _open_now(self) -> bool:
        return self.state is ConnectionState.OPEN and self._link is not None

    def _request(self, kind: RequestKind, message_type: str, data: dict[str, Any], now_ms: int, *,
                 sub: Subscription | None = None, bounded: bool = True) -> tuple[str, list[Action]]:
        pending = new_request(kind, message_type, data, now_ms, sub=sub)
        self._check_queueable()
        sends = self.outgoing.request(pending, open_now=self._open_now, bounded=bounded)
        return pending.id, [StartTimer(REQUEST_TIMER + pending.id, self.config.request_timeout_s), *sends]

    def submit(self, item: QueuedFrame) -> list[Action]:
        """Write now when open, else queue (bounded: `QueueFull`) for after re-authentication."""
        self._check_queueable()
        return self.outgoing.send_or_queue(item, open_now=self._open_now, bounded=True)

    def _check_queueable(self) -> None:
        if self._open_now:
            return
        if self.error is not None:
            raise self.error
        if self.closing:
            raise ClientClosed("the client was closed")

    def submit_internal(self, pending: PendingRequest) -> list[Action]:
        """A request of the core's own (no timer, outside the queue's bound)."""
        return self.outgoing.request(pending, open_now=self._open_now, bounded=False)

    def answered(self, pending: PendingRequest, answer: dict[str, Any], now_ms: int) -> list[Action]:
        """`pending` got its answer: resolve whoever waits for it."""
        self.outgoing.forget(pending.id)
        return self._settle(pending, answer, None, now_ms)

    def rejected(self, pending: PendingRequest, error: AutoSDLCError, now_ms: int) -> list[Action]:
        """`pending` failed (error frame, timeout)."""
        self.outgoing.forget(pending.id)
        return self._settle(pending, None, error, now_ms)

    def _settle(self, pending: PendingRequest, answer: dict[str, Any] | None,
                error: AutoSDLCError | None, now_ms: int) -> list[Action]:
        if pending.kind is RequestKind.AUTH:
            actions: list[Action] = [CancelTimer(REQUEST_TIMER + pending.id)]
            if self.finished:
                return actions
            if answer is not None:
                self.stats.token_refreshes += 1
                return actions + self._refresh.succeeded(answer, now_ms)
            assert error is not None
            return actions + self._refresh_failed_with(error, now_ms)
        if not pending.kind.awaited:
            return []
        if answer is not None:
            return [CancelTimer(REQUEST_TIMER + pending.id), ResolveRequest(pending.id, answer)]
        assert error is not None
        return [CancelTimer(REQUEST_TIMER + pending.id), FailRequest(pending.id, error)]
