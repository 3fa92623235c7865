"""`AutoSDLCWebSocket`: the WebSocket client's public API (docs/python-sdk.md).

The protocol decisions are `client.core.ClientCore`'s (no I/O); `client.driver.CoreDriver`
moves frames and timers between aiohttp and the core; `client.dispatch.Dispatcher` runs
the handlers and feeds the iterator. This class wires them and turns calls into core inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

import aiohttp

from autosdlc_ws.client.backoff import ReconnectPolicy
from autosdlc_ws.client.core import ClientCore, CoreConfig
from autosdlc_ws.client.credentials import Credentials, TokenProvider
from autosdlc_ws.client.dispatch import Dispatcher
from autosdlc_ws.client.driver import CoreDriver
from autosdlc_ws.client.errors import AutoSDLCError, ClientClosed
from autosdlc_ws.client.events import ConnectionState, new_id, now_ms, to_dict
from autosdlc_ws.client.handlers import Handler, HandlerRegistry, Listeners, Unsubscribe
from autosdlc_ws.client.subscriptions import SubscriptionInfo, agent_event_type
from autosdlc_ws.core.messages import Envelope

__all__ = ["AutoSDLCWebSocket"]

H = TypeVar("H", bound=Handler)


class AutoSDLCWebSocket:
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
        batch: bool = False,
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
        policy = ReconnectPolicy() if reconnect is True else None if reconnect is False else reconnect
        self._core = ClientCore(CoreConfig(
            reconnect=policy, has_token_provider=token_provider is not None,
            refresh_before_s=refresh_before_expiry, request_timeout_s=request_timeout,
            heartbeat_override_s=heartbeat_interval, pong_timeout_s=pong_timeout,
            outbox_size=outbox_size, dedup_size=dedup_size, max_message_bytes=max_message_bytes,
            compression=compression, batch=batch,
        ), session_id=session_id, last_event_id=last_event_id)
        self.stats = self._core.stats
        self._iterate = iterate
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
        self._dispatcher = Dispatcher(self._handlers, self._reset_listeners, self._report,
                                      lambda: self._core.error, iterate=iterate, queue_size=queue_size)
        self._driver = CoreDriver(
            self._core, url=url, credentials=Credentials(token, api_key, token_provider), typed=typed,
            connect_timeout=connect_timeout, close_timeout=close_timeout,
            max_message_bytes=max_message_bytes, headers=dict(headers or {}), http_session=http_session,
            handlers=self._handlers,
            dispatcher=self._dispatcher,
            state_listeners=self._state_listeners, error_listeners=self._error_listeners)

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> ConnectionState:
        return self._core.state

    @property
    def is_open(self) -> bool:
        return self._core.state is ConnectionState.OPEN

    @property
    def session_id(self) -> str | None:
        return self._core.session_id

    @property
    def connection_id(self) -> str | None:
        return self._core.connection_id

    @property
    def last_event_id(self) -> str | None:
        """Id of the last event handed to the application (the resume position)."""
        return self._core.last_event_id

    @property
    def error(self) -> AutoSDLCError | None:
        """Why the client stopped by itself (None while running or after `close()`)."""
        return self._core.error

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between application pings: the override, else the server's `heartbeatInterval`."""
        return self._core.heartbeat_interval_s

    @property
    def pending_outgoing(self) -> int:
        """Messages waiting in the outgoing queue for the connection."""
        return len(self._core.outgoing.outbox)

    @property
    def subscriptions(self) -> dict[str, SubscriptionInfo]:
        """Confirmed subscriptions by the id `subscribe()` returned."""
        return self._core.subscriptions()

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
        if self._core.finished:
            raise ClientClosed("this client was closed; create a new one")
        if self._core.started:
            return
        await self._driver.connect()

    async def close(self) -> None:
        """Close the connection (code 1000) and stop; iteration ends after the queued events."""
        if self._core.closing:
            await self._driver.done.wait()
            return
        await self._driver.close()

    async def wait_closed(self) -> None:
        """Wait until the client stops; raises the error if it stopped by itself."""
        await self._driver.done.wait()
        if self._core.error is not None:
            raise self._core.error

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AutoSDLCWebSocket:
        if not self._iterate:
            raise RuntimeError("this client was created with iterate=False")
        return self

    def __anext__(self) -> Coroutine[Any, Any, Any]:
        return self._dispatcher.next_event()  # no coroutine of its own: one call less per event

    # ------------------------------------------------------------------ requests

    async def subscribe(self, events: Sequence[str] | str,
                        filters: Mapping[str, str | Sequence[str]] | None = None, *,
                        snapshot: bool = False) -> str:
        """Subscribe to event types (exact or globs) with optional resource filters
        (`agentId`, `taskId`, `workflowId`, `repository`: a value or a list). Returns the
        subscription id, stable for the client's lifetime. Raises `RequestError` (e.g.
        `ForbiddenError`, code "forbidden") when the server refuses it.

        `snapshot=True` (protocol 1.1) first delivers the latest retained event of every
        (type, resource) the subscription matches, each with `metadata.snapshot` true,
        then live events: the current state without waiting for each source to speak."""
        request_id, actions = self._core.subscribe(events, filters, now_ms(), snapshot=snapshot)
        answer = await self._driver.call(request_id, actions)
        return str(answer["subscriptionId"])

    async def subscribe_to_agent(self, agent_id: str, events: Sequence[str] | str = ("agent_*",), *,
                                 snapshot: bool = False) -> str:
        """`subscribe(events, {"agentId": agent_id})`; `events` may use the design
        document's short names (`status`, `task_update`, `logs`, `metrics`, `errors`)
        beside full types and globs."""
        names = (events,) if isinstance(events, str) else tuple(events)
        return await self.subscribe([agent_event_type(n) for n in names], {"agentId": agent_id},
                                    snapshot=snapshot)

    async def unsubscribe(self, subscription_id: str) -> None:
        """Remove a subscription by the id `subscribe()` returned."""
        request_id, actions = self._core.unsubscribe(subscription_id, now_ms())
        if request_id is not None:
            await self._driver.call(request_id, actions)

    async def send(self, message: Mapping[str, Any] | Envelope) -> str:
        """Send a message (dict or model; `id` and `timestamp` filled in when absent). While
        disconnected it waits in the bounded outgoing queue (`QueueFull` when full) and is
        sent, in order, right after re-authentication. Returns the message id."""
        self._core.check_usable()
        obj = dict(to_dict(message)) if not isinstance(message, Mapping) else dict(message)
        message_id, actions = self._core.send(obj, now_ms())
        await self._driver.apply(actions)
        return message_id

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

    def _report(self, error: BaseException) -> None:
        self._driver.report(error)
