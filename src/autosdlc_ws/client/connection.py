"""`AutoSDLCWebSocket`: the WebSocket client (CONTRACT.md sections 4, 6, 7 and 9).

Tasks, per client:

* the *supervisor* owns the socket: it opens it (upgrade, `connect`,
  `auth_success`, re-subscribing after a lost session, flushing the outgoing
  queue), reads every frame, answers protocol frames itself (replies resolve
  the requests waiting for them) and hands application items (events, resets,
  control frames someone registered a handler for) to a bounded delivery
  queue; when the socket ends it decides, from the close code, whether to
  reconnect (with backoff) or to stop and report;
* the *dispatcher* takes items from the delivery queue in order, runs the
  matching handlers (sync or async) and puts events into the bounded iterator
  queue, so a handler may itself `await subscribe(...)` without blocking the
  reader;
* per connection: a *pinger* (application `ping` every heartbeat interval) and
  a *refresher* (in-band `auth_request` with a fresh token before expiry).

A full iterator queue blocks the dispatcher, a full delivery queue blocks the
reader: backpressure reaches the server, which closes a consumer that falls
too far behind with 4008; the client then reconnects and resumes, so nothing
is lost. While the reader waits on the application, the heartbeat watchdog
does not count the silence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

import aiohttp

from autosdlc_ws.client.backoff import ReconnectPolicy
from autosdlc_ws.client.errors import (
    AutoSDLCError,
    ClientClosed,
    ConnectError,
    MessageTooLarge,
)
from autosdlc_ws.client.events import ConnectionState, is_event, new_id, now_ms, to_dict
from autosdlc_ws.client.handlers import Handler, HandlerRegistry, Listeners, Unsubscribe, call
from autosdlc_ws.client.queue import Outbox, Outgoing, SeenIds
from autosdlc_ws.client.state import (
    END,
    ClientStats,
    Conn,
    ConnectionLost,
    Delivery,
    Pending,
    Sub,
    SubscriptionInfo,
    TokenProvider,
    dumps,
    normalise_filters,
)
from autosdlc_ws.client.transport import Transport, log
from autosdlc_ws.core.messages import Envelope

__all__ = ["AutoSDLCWebSocket"]

H = TypeVar("H", bound=Handler)


class AutoSDLCWebSocket(Transport):
    """A resilient client of the AutoSDLC WebSocket gateway. See docs/python-sdk.md.

    Credentials: `token` (JWT), `api_key`, or `token_provider` (a sync or async callable
    returning a JWT; called before every connection attempt and before expiry to refresh
    in-band). They go in the `Authorization: Bearer` / `X-API-Key` headers of the upgrade.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        token_provider: TokenProvider | None = None,
        compression: Literal["gzip"] | None = None,
        typed: bool = True,
        iterate: bool = True,
        queue_size: int = 1000,
        outbox_size: int = 1000,
        reconnect: ReconnectPolicy | bool = True,
        heartbeat_interval: float | None = None,
        pong_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        request_timeout: float = 10.0,
        close_timeout: float = 2.0,
        refresh_before_expiry: float | None = 60.0,
        dedup_size: int = 10_000,
        max_message_bytes: int = 16 * 1024 * 1024,
        session_id: str | None = None,
        last_event_id: str | None = None,
        on_state_change: Handler | None = None,
        on_reset: Handler | None = None,
        on_error: Handler | None = None,
        headers: Mapping[str, str] | None = None,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not (token or api_key or token_provider):
            raise ValueError("AutoSDLCWebSocket needs token, api_key or token_provider")
        if compression not in (None, "gzip"):
            raise ValueError("compression must be None or 'gzip'")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.url = url
        self._token = token
        self._api_key = api_key
        self._token_provider = token_provider
        self._compression = compression
        self._typed = typed
        self._iterate = iterate
        if reconnect is True:
            self._policy: ReconnectPolicy | None = ReconnectPolicy()
        elif reconnect is False:
            self._policy = None
        else:
            self._policy = reconnect
        self._heartbeat_override = heartbeat_interval
        self._pong_timeout = pong_timeout
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._close_timeout = close_timeout
        self._refresh_before = refresh_before_expiry
        self._max_message_bytes = max_message_bytes
        self._extra_headers = dict(headers or {})
        self._http = http_session
        self._owns_http = http_session is None

        self._state = ConnectionState.CLOSED
        self._started = False
        self._closing = False
        self._error: AutoSDLCError | None = None
        self._done = asyncio.Event()
        self._session_id = session_id
        self._resume_requested = session_id is not None
        self._connection_id: str | None = None
        self._last_event_id = last_event_id
        self._server_heartbeat_s: float | None = None
        self._max_frame_bytes: int | None = None
        self._conn: Conn | None = None
        self._connections = 0
        self._adopt_resumed = False

        self._subs: dict[str, Sub] = {}
        self._pending: dict[str, Pending] = {}
        self._outbox = Outbox(outbox_size)
        self._seen = SeenIds(dedup_size)
        self._write_lock = asyncio.Lock()
        self._deliveries: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self._deliveries_closed = False
        self._events: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self._events_finished = False

        self._handlers = HandlerRegistry()
        self._state_listeners = Listeners()
        self._reset_listeners = Listeners()
        self._error_listeners = Listeners()
        if on_state_change is not None:
            self._state_listeners.add(on_state_change)
        if on_reset is not None:
            self._reset_listeners.add(on_reset)
        if on_error is not None:
            self._error_listeners.add(on_error)
        self._supervisor: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self.stats = ClientStats()

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_open(self) -> bool:
        return self._state is ConnectionState.OPEN

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def connection_id(self) -> str | None:
        return self._connection_id

    @property
    def last_event_id(self) -> str | None:
        """Id of the last event handed to the application (the resume position)."""
        return self._last_event_id

    @property
    def error(self) -> AutoSDLCError | None:
        """Why the client stopped by itself (None while running or after `close()`)."""
        return self._error

    @property
    def pending_outgoing(self) -> int:
        """Messages waiting in the outgoing queue for the connection."""
        return len(self._outbox)

    @property
    def subscriptions(self) -> dict[str, SubscriptionInfo]:
        """Confirmed subscriptions by the id `subscribe()` returned."""
        return {
            cid: SubscriptionInfo(cid, s.events, dict(s.filters), s.server_id)
            for cid, s in self._subs.items()
        }

    # ------------------------------------------------------------------ listeners

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event: str, handler: Handler) -> Unsubscribe: ...

    def on(self, event: str, handler: Handler | None = None) -> Callable[[H], H] | Unsubscribe:
        """Register `handler` for `event`: an exact message type (events, control frames such
        as "subscription_update" or "error", or "$reset"), a prefix glob ("tdd_*") or "*"
        (globs match events only). Returns a callable that unregisters it. Without
        `handler`, a decorator that registers the function and returns it unchanged (remove
        it with `off`)."""
        if handler is None:
            def decorator(fn: H) -> H:
                self._handlers.add(event, fn)
                return fn

            return decorator
        return self._handlers.add(event, handler)

    def off(self, event: str, handler: Handler) -> bool:
        """Unregister a handler registered with `on(event, handler)`; False if it was not."""
        return self._handlers.remove(event, handler)

    def add_state_listener(self, callback: Handler) -> Unsubscribe:
        """`callback(state: ConnectionState)` on every state change (sync, or async as a task)."""
        return self._state_listeners.add(callback)

    def add_reset_listener(self, callback: Handler) -> Unsubscribe:
        """`callback(reset: ResetEvent)`, in stream order, whenever events may have been missed."""
        return self._reset_listeners.add(callback)

    def add_error_listener(self, callback: Handler) -> Unsubscribe:
        """`callback(error: AutoSDLCError)` for errors nothing awaits (uncorrelated `error`
        frames, failed refreshes, the reason the client stopped)."""
        return self._error_listeners.add(callback)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AutoSDLCWebSocket:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection. Raises `AuthenticationFailed` on HTTP 401/403 at the upgrade,
        `ConnectError` when the server cannot be reached; it does not retry the first
        connection. Once connected, connections lost later are re-established by itself."""
        if self._closing or self._error is not None:
            raise ClientClosed("this client was closed; create a new one")
        if self._started:
            return
        self._started = True
        self._set_state(ConnectionState.CONNECTING)
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="autosdlc-ws-dispatch")
        try:
            conn = await self._open()
        except ConnectionLost as lost:
            error: AutoSDLCError = self._fatal_for(lost, None) or ConnectError(
                f"connection closed during the handshake: {lost.code} {lost.reason}")
            await self._stop(error)
            raise error from None
        except AutoSDLCError as exc:
            await self._stop(exc)
            raise
        except BaseException as exc:
            await self._stop(ConnectError(f"connect failed: {exc!r}"))
            raise
        self._supervisor = asyncio.create_task(self._supervise(conn), name="autosdlc-ws-supervisor")

    async def close(self) -> None:
        """Close the connection (code 1000) and stop; iteration ends after the queued events."""
        if self._closing:
            await self._done.wait()
            return
        self._closing = True
        conn = self._conn
        if conn is not None and not conn.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1000, message=b"client closing"),
                                       self._close_timeout)
        current = asyncio.current_task()
        for task in (self._supervisor, *(conn.tasks if conn else ())):
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._dispatcher is not None and self._dispatcher is not current:
            self._dispatcher.cancel()
            with contextlib.suppress(BaseException):
                await self._dispatcher
        await self._finish(None, ClientClosed("the client was closed"))

    async def wait_closed(self) -> None:
        """Wait until the client stops; raises the error if it stopped by itself."""
        await self._done.wait()
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AutoSDLCWebSocket:
        if not self._iterate:
            raise RuntimeError("this client was created with iterate=False")
        return self

    async def __anext__(self) -> Any:
        if self._events_finished and self._events.empty():
            self._end_iteration()
        item = await self._events.get()
        if item is END:
            self._events.put_nowait(END)  # later calls end too
            self._end_iteration()
        return item

    def _end_iteration(self) -> None:
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    # ------------------------------------------------------------------ requests

    async def subscribe(self, events: Sequence[str] | str,
                        filters: Mapping[str, str | Sequence[str]] | None = None) -> str:
        """Subscribe to event types (exact or globs) with optional resource filters
        (`agentId`, `taskId`, `workflowId`, `repository`: a value or a list). Returns the
        subscription id, stable for the client's lifetime. Raises `RequestError` (e.g.
        `ForbiddenError`, code "forbidden") when the server refuses it."""
        self._check_usable()
        sub = Sub(None, None, (events,) if isinstance(events, str) else tuple(events),
                   normalise_filters(filters))
        await self._request("subscribe", sub.request_data(), kind="subscribe", sub=sub)
        assert sub.caller_id is not None
        return sub.caller_id

    async def subscribe_to_agent(self, agent_id: str, events: Sequence[str] | str = ("agent_*",)) -> str:
        """`subscribe(events, {"agentId": agent_id})`."""
        return await self.subscribe(events, {"agentId": agent_id})

    async def unsubscribe(self, subscription_id: str) -> None:
        """Remove a subscription by the id `subscribe()` returned."""
        self._check_usable()
        sub = self._subs.pop(subscription_id, None)
        if sub is None:
            raise KeyError(f"no subscription {subscription_id!r}")
        for rid, pending in list(self._pending.items()):
            if pending.kind == "resubscribe" and pending.sub is sub and not pending.sent:
                del self._pending[rid]  # never sent: nothing to undo on the server
                self._outbox.remove_request(rid)
        if sub.server_id is None:
            return  # a re-subscribe in flight; its answer finds no owner and is removed then
        await self._request("unsubscribe", {"subscriptionId": sub.server_id}, kind="unsubscribe")

    async def send(self, message: Mapping[str, Any] | Envelope) -> str:
        """Send a message (dict or model; `id` and `timestamp` filled in when absent). While
        disconnected it waits in the bounded outgoing queue (`QueueFull` when full) and is
        sent, in order, right after re-authentication. Returns the message id."""
        self._check_usable()
        obj = dict(to_dict(message)) if not isinstance(message, Mapping) else dict(message)
        type_ = obj.get("type")
        if not isinstance(type_, str):
            raise ValueError("a message needs a string type")
        obj.setdefault("id", new_id("evt" if is_event(type_) else "msg"))
        obj.setdefault("timestamp", now_ms())
        obj.setdefault("data", {})
        text = dumps(obj)
        if self._max_frame_bytes is not None and len(text.encode()) > self._max_frame_bytes:
            raise MessageTooLarge(f"message of {len(text.encode())} bytes exceeds the server's "
                                  f"maxFrameBytes {self._max_frame_bytes}")
        await self._submit(Outgoing(text))
        return str(obj["id"])

    async def publish(self, type_: str, data: Mapping[str, Any], *, id: str | None = None,
                      metadata: Mapping[str, Any] | None = None) -> str:
        """Publish an event over the WebSocket (needs publish permission). Fire-and-forget once
        written: a refusal arrives as an `error` frame (error listeners). For acknowledged,
        retried publishing use `Publisher` (HTTP)."""
        message: dict[str, Any] = {"id": id or new_id("evt"), "type": type_, "timestamp": now_ms(),
                                   "data": dict(data)}
        if metadata:
            message["metadata"] = dict(metadata)
        return await self.send(message)

    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closing:
            raise ClientClosed("the client was closed")
        if not self._started:
            raise ClientClosed("not connected: call connect() (or use `async with`) first")

    # ------------------------------------------------------------------ dispatching

    async def _dispatch_loop(self) -> None:
        while True:
            if self._deliveries_closed and self._deliveries.empty():
                self._finish_events()
                return
            item = await self._deliveries.get()
            if item is END:
                self._finish_events()
                return
            assert isinstance(item, Delivery)
            for handler in self._handlers.matching(item.type):
                try:
                    await call(handler, item.message)
                except Exception as exc:
                    log.exception("handler %r for %s failed", handler, item.type)
                    self._report(AutoSDLCError(f"handler for {item.type} failed: {exc!r}"))
            if item.reset:
                await self._reset_listeners.run(item.message)
            if item.to_iterator and self._iterate:
                await self._events.put(item.message)
