"""The client's transport layer: opening a connection (upgrade, `connect`, `auth_success`,
restoring state, flushing the queue), reading it under a heartbeat watchdog, the pinger and
token refresher, and the supervisor that reconnects with backoff or stops and reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiohttp

from autosdlc_ws.client.backoff import Backoff, parse_retry_after
from autosdlc_ws.client.errors import (
    AuthenticationFailed,
    AutoSDLCError,
    ConnectError,
    ConnectionClosed,
    ReconnectFailed,
)
from autosdlc_ws.client.events import ConnectionState, FrameError, decode_frame, new_id, now_ms
from autosdlc_ws.client.protocol import Protocol
from autosdlc_ws.client.queue import Outgoing
from autosdlc_ws.client.state import (
    END,
    SUBPROTOCOL,
    WRITE_ERRORS,
    Conn,
    ConnectionLost,
    close_outcome,
    dumps,
)

log = logging.getLogger("autosdlc_ws.client")


class Transport(Protocol):
    """Opening, reading, keeping alive and re-opening the socket."""

    async def _credentials(self) -> dict[str, str]:
        if self._token_provider is not None:
            result = self._token_provider()
            token = await result if not isinstance(result, str) else result
            self._token = str(token)
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}
        assert self._api_key is not None
        return {"X-API-Key": self._api_key}

    def _http_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        return self._http

    async def _open(self) -> Conn:
        """Upgrade and authenticate (within `connect_timeout`), then restore the session's
        state and flush the outgoing queue: the client is OPEN."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                conn = await self._upgrade()
        except TimeoutError:
            raise ConnectError(f"no complete handshake within {self._connect_timeout} s") from None
        try:
            await self._establish(conn)
        except BaseException:
            await self._abort(conn.ws)
            self._on_disconnected(conn)
            raise
        return conn

    async def _upgrade(self) -> Conn:
        try:
            headers = {**self._extra_headers, **await self._credentials()}
        except Exception as exc:
            raise ConnectError(f"token_provider failed: {exc!r}") from exc
        params: dict[str, str] = {}
        if self._compression:
            params["compression"] = self._compression
        if self._session_id:
            params["session_id"] = self._session_id
            if self._last_event_id:
                params["last_event_id"] = self._last_event_id
        try:
            ws = await self._http_session().ws_connect(
                self.url, params=params, headers=headers, protocols=(SUBPROTOCOL,),
                heartbeat=self.heartbeat_interval or None, autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self._close_timeout),
                max_msg_size=self._max_message_bytes,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                code = "unauthorized" if exc.status == 401 else "forbidden"
                raise AuthenticationFailed(exc.status, code, "the gateway refused the credentials") from None
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            raise ConnectError(f"upgrade refused with HTTP {exc.status}", status=exc.status,
                               retry_after=retry_after) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectError(f"cannot connect to {self.url}: {exc!r}") from None
        conn = Conn(ws)
        try:
            await self._authenticate(conn)
        except BaseException:
            await self._abort(ws)
            self._on_disconnected(conn)
            raise
        return conn

    async def _authenticate(self, conn: Conn) -> None:
        """Read `connect` then `auth_success` (the server sends both right after the upgrade)."""
        first = await self._receive(conn, self._connect_timeout)
        if first.get("type") != "connect" or not isinstance(first.get("data"), dict):
            raise ConnectError(f"expected a connect frame, got {first.get('type')!r}")
        data = first["data"]
        conn.previous_session = self._session_id
        conn.resumed = data.get("resumed") is True
        self._session_id = str(data.get("sessionId"))
        self._connection_id = str(data.get("connectionId"))
        heartbeat_ms = data.get("heartbeatInterval")
        if isinstance(heartbeat_ms, int | float) and heartbeat_ms > 0:
            self._server_heartbeat_s = heartbeat_ms / 1000
        limits = data.get("limits")
        if isinstance(limits, dict) and isinstance(limits.get("maxFrameBytes"), int):
            self._max_frame_bytes = limits["maxFrameBytes"]
        await self._deliver_control("connect", first)
        while True:
            obj = await self._receive(conn, self._connect_timeout)
            type_ = obj["type"]
            if type_ == "auth_success":
                expires = (obj.get("data") or {}).get("expiresAt")
                conn.expires_at_ms = expires if isinstance(expires, int) else None
                await self._deliver_control(type_, obj)
                return
            if type_ == "auth_failure":
                fdata = obj.get("data") or {}
                raise AuthenticationFailed(401, str(fdata.get("code", "unauthorized")),
                                           str(fdata.get("message", "")))
            await self._on_frame(conn, obj)

    async def _establish(self, conn: Conn) -> None:
        first_connection = self._connections == 0
        self._connections += 1
        # subscriptions of a session named in __init__ (another process's) are adopted, not removed
        self._adopt_resumed = first_connection and self._resume_requested and conn.resumed
        self.stats.connects += 1
        if not first_connection:
            self.stats.reconnects += 1
            if conn.resumed:
                self.stats.resumed += 1
        if not conn.resumed and conn.previous_session is not None \
                and (not first_connection or self._resume_requested):
            await self._session_lost(conn.previous_session)
        async with self._write_lock:
            self._conn = conn
            await self._flush(conn)
            if conn.resumed and not self._adopt_resumed:
                await self._start_resume_check(conn)
            conn.opened_mono = time.monotonic()
            self._set_state(ConnectionState.OPEN)
        conn.tasks.append(asyncio.create_task(self._ping_loop(conn), name="autosdlc-ws-ping"))
        if conn.expires_at_ms is not None and self._token_provider is not None \
                and self._refresh_before is not None:
            conn.tasks.append(asyncio.create_task(self._refresh_loop(conn.expires_at_ms),
                                                  name="autosdlc-ws-refresh"))

    async def _start_resume_check(self, conn: Conn) -> None:
        """After `resumed: true`, verify the server restored every subscription: it answers
        our frames only once the restore is sent, so when this ping's pong arrives every
        `status: "resumed"` update has too (see `Protocol._finish_resume_check`)."""
        conn.expected = {s.server_id for s in self._subs.values() if s.server_id is not None}
        if not conn.expected:
            return
        conn.resume_check = new_id("ping")
        try:
            await conn.ws.send_str(dumps({"id": conn.resume_check, "type": "ping",
                                          "timestamp": now_ms(), "data": {}}))
        except WRITE_ERRORS as exc:
            raise ConnectionLost(1006, f"write failed: {exc!r}") from None

    def _liveness_timeout(self) -> float | None:
        interval = self.heartbeat_interval
        return interval + self._pong_timeout if interval > 0 else None

    async def _receive(self, conn: Conn, timeout: float | None) -> dict[str, Any]:
        ws = conn.ws
        while True:
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                self.stats.heartbeat_timeouts += 1
                raise ConnectionLost(1006, f"nothing received for {timeout} s (heartbeat timeout)") from None
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                try:
                    return decode_frame(msg.data, binary=msg.type is aiohttp.WSMsgType.BINARY,
                                        max_decompressed=self._max_message_bytes)
                except FrameError as exc:
                    log.warning("ignoring a bad frame from the server: %s", exc)
                    continue
            if msg.type is aiohttp.WSMsgType.CLOSE:
                raise ConnectionLost(int(msg.data), str(msg.extra or ""))
            if msg.type is aiohttp.WSMsgType.CLOSING:
                raise ConnectionLost(1000, "closing")
            detail = msg.data if msg.type is aiohttp.WSMsgType.ERROR else ws.exception()
            raise ConnectionLost(1006, f"connection lost: {detail!r}" if detail else "connection lost")

    async def _serve(self, conn: Conn) -> ConnectionLost:
        try:
            while True:
                obj = await self._receive(conn, self._liveness_timeout())
                await self._on_frame(conn, obj)
        except ConnectionLost as lost:
            return lost

    async def _ping_loop(self, conn: Conn) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            text = dumps({"id": new_id("ping"), "type": "ping", "timestamp": now_ms(), "data": {}})
            async with self._write_lock:
                if conn.ws.closed:
                    return
                try:
                    await conn.ws.send_str(text)
                except WRITE_ERRORS:
                    return

    async def _refresh_loop(self, expires_at_ms: int) -> None:
        assert self._token_provider is not None and self._refresh_before is not None
        failed = False
        while True:
            remaining = expires_at_ms / 1000 - time.time()
            if remaining <= 0:
                return  # the server closes with 4003; the reconnect fetches a fresh token
            if failed:
                delay = min(max(remaining / 4, 0.05), 5.0)
            else:
                delay = max(remaining / 2, remaining - self._refresh_before)
            await asyncio.sleep(delay)
            try:
                result = self._token_provider()
                token = str(await result if not isinstance(result, str) else result)
                reply = await self._request("auth_request", {"token": token}, kind="auth", bounded=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed = True
                self._report(exc if isinstance(exc, AutoSDLCError) else AutoSDLCError(
                    f"token refresh failed: {exc!r}"))
                continue
            failed = False
            self._token = token
            self.stats.token_refreshes += 1
            expires = (reply.get("data") or {}).get("expiresAt")
            if not isinstance(expires, int):
                return
            expires_at_ms = expires

    async def _supervise(self, conn: Conn) -> None:
        try:
            await self._supervise_loop(conn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the client silently "reconnecting"
            log.exception("supervisor failed")
            if not self._closing:
                await self._stop(AutoSDLCError(f"internal client error: {exc!r}"))

    async def _supervise_loop(self, conn: Conn) -> None:
        policy = self._policy
        backoff = Backoff(policy.base, policy.cap, policy.max_attempts) if policy else None
        while True:
            lost = await self._serve(conn)
            if self._closing:
                return
            up_for = time.monotonic() - conn.opened_mono
            await self._abort(conn.ws)
            self._on_disconnected(conn)
            self.stats.last_close_code = lost.code
            log.info("connection lost (%s %s) after %.1f s", lost.code, lost.reason, up_for)
            fatal = self._fatal_for(lost, conn)
            if fatal is not None or policy is None or backoff is None:
                await self._stop(fatal or ConnectionClosed(lost.code, lost.reason))
                return
            if up_for >= policy.stable_after:
                backoff.reset()
            self._set_state(ConnectionState.RECONNECTING)
            next_conn = await self._reconnect(backoff)
            if next_conn is None:
                return
            conn = next_conn

    async def _reconnect(self, backoff: Backoff) -> Conn | None:
        last_error: BaseException | None = None
        retry_after: float | None = None
        while True:
            delay = backoff.next_delay()
            if delay is None:
                await self._stop(ReconnectFailed(backoff.attempts, last_error))
                return None
            if retry_after is not None:
                delay = max(delay, retry_after)
            await asyncio.sleep(delay)
            if self._closing:
                return None
            try:
                return await self._open()
            except AuthenticationFailed as exc:
                await self._stop(exc)
                return None
            except ConnectionLost as lost:
                fatal = self._fatal_for(lost, None)
                if fatal is not None:
                    await self._stop(fatal)
                    return None
                last_error, retry_after = ConnectError(f"closed during the handshake: {lost}"), None
            except ConnectError as exc:
                last_error, retry_after = exc, exc.retry_after
            log.debug("reconnect attempt %d failed: %s", backoff.attempts, last_error)

    def _fatal_for(self, lost: ConnectionLost, conn: Conn | None) -> AutoSDLCError | None:
        return close_outcome(lost.code, lost.reason, conn.disconnect if conn is not None else None,
                             self._token_provider is not None)

    def _on_disconnected(self, conn: Conn) -> None:
        """Stop the connection's tasks; requests in flight go back to the queue's front."""
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()
        if self._conn is conn:
            self._conn = None
        requeue: list[Outgoing] = []
        for rid, pending in list(self._pending.items()):
            if pending.kind == "auth":
                del self._pending[rid]
                self._outbox.remove_request(rid)
                self._reject(pending, ConnectError("connection lost during token refresh"))
            elif pending.sent and pending.kind == "orphan":
                del self._pending[rid]
            elif pending.sent:
                pending.sent = False
                requeue.append(Outgoing(pending.text, rid))
        self._outbox.requeue_front(requeue)

    async def _abort(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        if ws.closed:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=1001, message=b"client reconnecting"),
                                   min(self._close_timeout, 0.5))

    async def _stop(self, error: AutoSDLCError) -> None:
        """Stop for good and report `error` (iteration raises it after the queued events)."""
        log.warning("client stopped: %s", error)
        self._error = error
        self._report(error)
        await self._finish(error, error)

    async def _finish(self, error: AutoSDLCError | None, pending_error: AutoSDLCError) -> None:
        for rid, pending in list(self._pending.items()):
            del self._pending[rid]
            self._reject(pending, pending_error)
        dropped = self._outbox.clear()
        if dropped:
            log.warning("%d queued outgoing messages dropped", dropped)
        conn = self._conn
        if conn is not None:
            self._on_disconnected(conn)
            await self._abort(conn.ws)
        if error is None or self._dispatcher is None or self._dispatcher.done():
            self._finish_events()
        else:  # let the dispatcher deliver what was received before the end
            try:
                self._deliveries.put_nowait(END)
            except asyncio.QueueFull:
                self._deliveries_closed = True
        if self._owns_http and self._http is not None and not self._http.closed:
            await self._http.close()
        self._set_state(ConnectionState.CLOSED)
        self._done.set()

    def _finish_events(self) -> None:
        self._events_finished = True
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(END)
