"""The client's protocol layer: requests and their answers, the outgoing queue, what the
server's frames mean (replies, restored or lost subscriptions, resets), independent of how
the socket is opened or kept alive (`transport`) and of the public API (`connection`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from autosdlc_ws.client.backoff import ReconnectPolicy
from autosdlc_ws.client.errors import AutoSDLCError, ClientClosed, RequestError, RequestTimeout
from autosdlc_ws.client.events import (
    RESET_TYPE,
    ConnectionState,
    ResetData,
    ResetEvent,
    is_event,
    new_id,
    now_ms,
    to_model,
)
from autosdlc_ws.client.handlers import HandlerRegistry, Listeners
from autosdlc_ws.client.queue import Outbox, Outgoing, SeenIds
from autosdlc_ws.client.state import (
    DEFAULT_HEARTBEAT_S,
    WRITE_ERRORS,
    ClientStats,
    Conn,
    ConnectionLost,
    Delivery,
    Pending,
    Sub,
    TokenProvider,
    dumps,
    normalise_filters,
)

log = logging.getLogger("autosdlc_ws.client")


class Protocol:
    """State shared by the layers (set by `AutoSDLCWebSocket.__init__`) and frame handling."""

    url: str
    stats: ClientStats
    _token: str | None
    _api_key: str | None
    _token_provider: TokenProvider | None
    _compression: str | None
    _typed: bool
    _iterate: bool
    _policy: ReconnectPolicy | None
    _heartbeat_override: float | None
    _pong_timeout: float
    _connect_timeout: float
    _request_timeout: float
    _close_timeout: float
    _refresh_before: float | None
    _max_message_bytes: int
    _extra_headers: dict[str, str]
    _http: aiohttp.ClientSession | None
    _owns_http: bool
    _state: ConnectionState
    _started: bool
    _closing: bool
    _error: AutoSDLCError | None
    _done: asyncio.Event
    _session_id: str | None
    _resume_requested: bool
    _connection_id: str | None
    _last_event_id: str | None
    _server_heartbeat_s: float | None
    _max_frame_bytes: int | None
    _conn: Conn | None
    _connections: int
    _adopt_resumed: bool
    _subs: dict[str, Sub]
    _pending: dict[str, Pending]
    _outbox: Outbox
    _seen: SeenIds
    _write_lock: asyncio.Lock
    _deliveries: asyncio.Queue[Any]
    _deliveries_closed: bool
    _events: asyncio.Queue[Any]
    _events_finished: bool
    _handlers: HandlerRegistry
    _state_listeners: Listeners
    _reset_listeners: Listeners
    _error_listeners: Listeners
    _supervisor: asyncio.Task[None] | None
    _dispatcher: asyncio.Task[None] | None

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between application pings: the override, else the server's `heartbeatInterval`."""
        if self._heartbeat_override is not None:
            return self._heartbeat_override
        return self._server_heartbeat_s or DEFAULT_HEARTBEAT_S

    async def _request(self, type_: str, data: dict[str, Any], *, kind: str, sub: Sub | None = None,
                       bounded: bool = True) -> dict[str, Any]:
        rid = new_id("req")
        text = dumps({"id": rid, "type": type_, "timestamp": now_ms(), "data": data})
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = Pending(rid, kind, text, future, sub)
        try:
            await self._submit(Outgoing(text, rid), bounded=bounded)
            return await asyncio.wait_for(future, self._request_timeout)
        except TimeoutError:
            raise RequestTimeout(f"no answer to {type_} within {self._request_timeout} s") from None
        finally:
            self._pending.pop(rid, None)
            self._outbox.remove_request(rid)

    async def _submit(self, item: Outgoing, *, bounded: bool = True) -> None:
        """Write now when open, else queue (bounded) for after re-authentication."""
        async with self._write_lock:
            conn = self._conn
            if self._state is ConnectionState.OPEN and conn is not None and not conn.ws.closed:
                try:
                    await conn.ws.send_str(item.text)
                    self._mark_sent(item)
                    return
                except WRITE_ERRORS:
                    pass  # the connection is going away: keep the frame for the next one
            if self._error is not None:
                raise self._error
            if self._closing:
                raise ClientClosed("the client was closed")
            if bounded:
                self._outbox.append(item)
            else:
                self._outbox.append_unbounded(item)

    def _mark_sent(self, item: Outgoing) -> None:
        if item.request_id is not None:
            pending = self._pending.get(item.request_id)
            if pending is not None:
                pending.sent = True

    async def _session_lost(self, previous_session: str) -> None:
        """`resumed: false`: the server forgot the session. Re-send every subscription (the
        caller's ids stay, mapped to the new server ids) and surface a reset."""
        self._last_event_id = None  # an id of the lost history means nothing to the new session
        for rid, pending in list(self._pending.items()):
            if pending.kind in ("resubscribe", "orphan"):
                del self._pending[rid]
                self._outbox.remove_request(rid)
        resubscribes: list[Outgoing] = []
        for sub in self._subs.values():
            sub.server_id = None
            rid = new_id("req")
            text = dumps({"id": rid, "type": "subscribe", "timestamp": now_ms(), "data": sub.request_data()})
            self._pending[rid] = Pending(rid, "resubscribe", text, None, sub)
            resubscribes.append(Outgoing(text, rid))
        self._outbox.requeue_front(resubscribes)
        await self._emit_reset(ResetData(
            "session_not_resumed", self._session_id, previous_session, tuple(self._subs),
            "the server no longer knew the session; subscriptions were re-sent, events in between "
            "may be missing"))

    async def _flush(self, conn: Conn) -> None:
        while self._outbox:
            item = self._outbox.popleft()
            if item.request_id is not None and item.request_id not in self._pending:
                continue  # its request was cancelled or timed out
            try:
                await conn.ws.send_str(item.text)
            except WRITE_ERRORS as exc:
                self._outbox.appendleft(item)
                raise ConnectionLost(1006, f"write failed during the flush: {exc!r}") from None
            self._mark_sent(item)

    async def _on_frame(self, conn: Conn, obj: dict[str, Any]) -> None:
        type_: str = obj["type"]
        if is_event(type_):
            event_id = obj.get("id")
            if isinstance(event_id, str):
                if not self._seen.add(event_id):
                    self.stats.duplicates_dropped += 1
                    return
                self._last_event_id = event_id
            self.stats.events_received += 1
            await self._deliveries.put(Delivery(type_, self._wrap(obj), True))
            return
        data = obj.get("data")
        data = data if isinstance(data, dict) else {}
        metadata = obj.get("metadata")
        correlation = metadata.get("correlationId") if isinstance(metadata, dict) else None
        pending = self._pending.get(correlation) if isinstance(correlation, str) else None
        if type_ == "subscription_update":
            if data.get("status") == "resumed" and isinstance(data.get("subscriptionId"), str):
                conn.confirmed.add(data["subscriptionId"])
            await self._on_subscription_update(data, pending)
        elif type_ == "error":
            await self._on_error_frame(data, pending)
        elif type_ == "auth_success":
            if pending is not None:
                self._resolve(pending, obj)
        elif type_ == "auth_failure":
            if pending is not None:
                self._reject(pending, RequestError(str(data.get("code", "unauthorized")),
                                                   str(data.get("message", "")), data=data))
            else:
                log.warning("auth_failure from the gateway: %s", data.get("message"))
        elif type_ == "disconnect":
            conn.disconnect = data
        elif type_ == "pong" and conn.resume_check is not None and correlation == conn.resume_check:
            await self._finish_resume_check(conn)
        await self._deliver_control(type_, obj)

    async def _finish_resume_check(self, conn: Conn) -> None:
        """Re-subscribe what a resumed session failed to restore, and surface the gap."""
        conn.resume_check = None
        missing = [s for s in self._subs.values()
                   if s.server_id in conn.expected and s.server_id not in conn.confirmed]
        if not missing:
            return
        for sub in missing:
            log.warning("the resumed session lacks subscription %s; re-subscribing", sub.caller_id)
            sub.server_id = None
            rid = new_id("req")
            text = dumps({"id": rid, "type": "subscribe", "timestamp": now_ms(), "data": sub.request_data()})
            self._pending[rid] = Pending(rid, "resubscribe", text, None, sub)
            with contextlib.suppress(AutoSDLCError):
                await self._submit(Outgoing(text, rid), bounded=False)
        await self._emit_reset(ResetData(
            "subscription_lost", self._session_id, self._session_id,
            tuple(s.caller_id for s in missing if s.caller_id is not None),
            "the server resumed the session without these subscriptions; they were re-sent, "
            "events in between may be missing"))

    async def _on_subscription_update(self, data: dict[str, Any], pending: Pending | None) -> None:
        server_id = data.get("subscriptionId")
        status = data.get("status")
        if not isinstance(server_id, str):
            return
        if pending is not None and pending.kind in ("subscribe", "resubscribe") and status == "active":
            self._pending.pop(pending.id, None)
            sub = pending.sub
            assert sub is not None
            if pending.kind == "resubscribe" and (sub.caller_id not in self._subs):
                await self._orphan(server_id)  # unsubscribed while the re-subscribe was in flight
                return
            sub.server_id = server_id
            if sub.caller_id is None:
                sub.caller_id = server_id
                self._subs[server_id] = sub
            self._resolve(pending, data)
            return
        if pending is not None:
            self._pending.pop(pending.id, None)
            self._resolve(pending, data)
            return
        sub = self._sub_for(server_id)
        if status in ("resumed", "active"):
            if sub is None:
                if self._adopt_resumed and status == "resumed":  # resuming a session given to __init__
                    events = data.get("events") if isinstance(data.get("events"), list) else []
                    filters = data.get("filters") if isinstance(data.get("filters"), dict) else {}
                    self._subs[server_id] = Sub(server_id, server_id, tuple(events or ()),
                                                 normalise_filters(filters))
                else:
                    await self._orphan(server_id)
        elif status == "removed":
            if sub is not None and sub.caller_id is not None:
                self._subs.pop(sub.caller_id, None)
                self._report(RequestError("removed", f"the server removed subscription {sub.caller_id}: "
                                                     f"{data.get('reason', '')}", data=data))
        elif status == "reset":
            ids = (sub.caller_id,) if sub is not None and sub.caller_id is not None else ()
            await self._emit_reset(ResetData("history_lost", self._session_id, self._session_id, ids,
                                             str(data.get("reason") or "history unavailable")))

    async def _on_error_frame(self, data: dict[str, Any], pending: Pending | None) -> None:
        error = RequestError.from_data(data)
        if pending is None:
            self._report(error)
            return
        self._pending.pop(pending.id, None)
        if pending.kind == "unsubscribe" and error.code == "not_found":
            self._resolve(pending, data)  # already gone (e.g. the session was lost): done
        elif pending.kind == "orphan":
            pass
        elif pending.kind == "resubscribe":
            if error.code == "rate_limited":
                delay = (error.retry_after_ms or 1000) / 1000
                self._pending[pending.id] = pending
                pending.sent = False
                asyncio.get_running_loop().call_later(delay, self._resend_later, pending)
                return
            sub = pending.sub
            if sub is not None and sub.caller_id is not None:
                self._subs.pop(sub.caller_id, None)
            self._report(error)
        else:
            self._reject(pending, error)

    def _resend_later(self, pending: Pending) -> None:
        if self._pending.get(pending.id) is not pending or self._closing:
            return
        try:
            self._outbox.append_unbounded(Outgoing(pending.text, pending.id))
        except Exception:  # pragma: no cover - defensive
            return
        conn = self._conn
        if conn is not None and self._state is ConnectionState.OPEN:
            task = asyncio.ensure_future(self._flush_locked(conn))
            conn.tasks.append(task)

    async def _flush_locked(self, conn: Conn) -> None:
        async with self._write_lock:
            if self._conn is conn and self._state is ConnectionState.OPEN:
                with contextlib.suppress(ConnectionLost):
                    await self._flush(conn)

    async def _orphan(self, server_id: str) -> None:
        """Remove a subscription the server has and the client does not want."""
        rid = new_id("req")
        text = dumps({"id": rid, "type": "unsubscribe", "timestamp": now_ms(),
                       "data": {"subscriptionId": server_id}})
        self._pending[rid] = Pending(rid, "orphan", text)
        with contextlib.suppress(AutoSDLCError):
            await self._submit(Outgoing(text, rid), bounded=False)

    def _sub_for(self, server_id: str) -> Sub | None:
        for sub in self._subs.values():
            if sub.server_id == server_id:
                return sub
        return None

    @staticmethod
    def _resolve(pending: Pending, value: dict[str, Any]) -> None:
        if pending.future is not None and not pending.future.done():
            pending.future.set_result(value)

    @staticmethod
    def _reject(pending: Pending, error: BaseException) -> None:
        if pending.future is not None and not pending.future.done():
            pending.future.set_exception(error)

    def _wrap(self, obj: dict[str, Any]) -> Any:
        return to_model(obj) if self._typed else obj

    async def _deliver_control(self, type_: str, obj: dict[str, Any]) -> None:
        if self._handlers.has_exact(type_):
            await self._deliveries.put(Delivery(type_, self._wrap(obj), False))

    async def _emit_reset(self, data: ResetData) -> None:
        self.stats.resets += 1
        log.warning("reset (%s): %s", data.reason, data.detail)
        await self._deliveries.put(Delivery(RESET_TYPE, ResetEvent(data), True, reset=True))

    def _report(self, error: BaseException) -> None:
        if self._error_listeners:
            self._error_listeners.fire(error)
        elif error is not self._error:
            log.warning("%s", error)

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        self._state = state
        log.debug("state %s", state.value)
        self._state_listeners.fire(state)
