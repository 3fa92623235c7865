"""The asyncio driver of the client core: it moves frames and timers between one aiohttp
WebSocket at a time and `ClientCore`, and carries out the core's actions. It decides
nothing about the protocol.

Tasks, per client:

* the *supervisor* reads the socket and feeds every frame to the core; when the core
  says `Reconnect(delay)` it waits and opens the next socket (upgrade, then the
  handshake frames, again through the core); it ends when the core says `Stopped`;
* the *dispatcher* (`client.dispatch`) runs the application's handlers and feeds the
  iterator;
* timers (`loop.call_later`) for pings, request timeouts, token refreshes and delayed
  re-subscribes, and a short task per token fetch.

While the reader waits on a full delivery queue (a slow application), the heartbeat
watchdog does not count the silence: it only times the wait for the next frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Coroutine, Sequence
from time import time
from typing import Any

import aiohttp

from autosdlc_ws.client.actions import (
    Action,
    CancelTimer,
    Deliver,
    DeliverReset,
    DropSocket,
    FailRequest,
    FetchToken,
    Reconnect,
    ReportError,
    ResolveRequest,
    SendFrame,
    StartTimer,
    StateChanged,
    Stopped,
)
from autosdlc_ws.client.backoff import parse_retry_after
from autosdlc_ws.client.core import ClientCore
from autosdlc_ws.client.credentials import Credentials
from autosdlc_ws.client.dispatch import Delivery, Dispatcher
from autosdlc_ws.client.errors import AuthenticationFailed, AutoSDLCError, ConnectError
from autosdlc_ws.client.events import RESET_TYPE, now_ms, to_model
from autosdlc_ws.client.handlers import HandlerRegistry, Listeners

log = logging.getLogger("autosdlc_ws.client")

SUBPROTOCOL = "autosdlc.v1"
WRITE_ERRORS = (ConnectionError, aiohttp.ClientError, RuntimeError)


class _Current(enum.Enum):
    SOCKET = "current socket"


CURRENT = _Current.SOCKET


class CoreDriver:
    """Carries out a `ClientCore`'s actions with aiohttp and asyncio."""

    def __init__(self, core: ClientCore, *, url: str, credentials: Credentials, typed: bool,
                 connect_timeout: float, close_timeout: float, max_message_bytes: int,
                 headers: dict[str, str], http_session: aiohttp.ClientSession | None,
                 handlers: HandlerRegistry, dispatcher: Dispatcher, state_listeners: Listeners,
                 error_listeners: Listeners) -> None:
        self._core = core
        self._url = url
        self._credentials = credentials
        self._typed = typed
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._max_message_bytes = max_message_bytes
        self._extra_headers = headers
        self._http = http_session
        self._owns_http = http_session is None
        self._handlers = handlers
        self._dispatcher = dispatcher
        self._state_listeners = state_listeners
        self._error_listeners = error_listeners
        self.done = asyncio.Event()
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._write_lock = asyncio.Lock()
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._reconnect_delay: float | None = None
        self._supervisor: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """The first connection: raises why it failed (the client then stops)."""
        core = self._core
        await self.apply(core.start())
        self._dispatcher.start()
        try:
            await self._attempt()
        except BaseException as exc:
            await self.apply(core.attempt_failed(ConnectError(f"connect failed: {exc!r}"), now_ms()))
            raise
        if core.error is not None:
            raise core.error from None
        self._supervisor = asyncio.create_task(self._supervise(), name="autosdlc-ws-supervisor")

    async def close(self) -> None:
        """Close the socket (1000) and stop; pending requests fail with `ClientClosed`."""
        actions = self._core.close()
        ws = self._socket
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1000, message=b"client closing"), self._close_timeout)
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not asyncio.current_task() and not supervisor.done():
            supervisor.cancel()
            with contextlib.suppress(BaseException):
                await supervisor
        await self._dispatcher.stop()
        await self.apply(actions)

    async def _supervise(self) -> None:
        try:
            while True:
                ws = self._socket
                if ws is not None:
                    await self._read(ws, handshake_deadline=None)
                delay, self._reconnect_delay = self._reconnect_delay, None
                if delay is None or self._core.finished:
                    return
                await asyncio.sleep(delay)
                if self._core.finished:
                    return
                await self._attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the client silently "reconnecting"
            log.exception("supervisor failed")
            await self.apply(self._core.fail(AutoSDLCError(f"internal client error: {exc!r}")))

    async def _attempt(self) -> None:
        """One connection attempt: the upgrade and the handshake, within `connect_timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        try:
            async with asyncio.timeout_at(deadline):
                ws = await self._upgrade()
        except TimeoutError:
            error = ConnectError(f"no complete handshake within {self._connect_timeout} s")
        except ConnectError as exc:
            error = exc
        else:
            self._socket = ws
            await self.apply(self._core.socket_opened())
            await self._read(ws, handshake_deadline=deadline)
            return
        await self.apply(self._core.attempt_failed(error, now_ms()))

    async def _upgrade(self) -> aiohttp.ClientWebSocketResponse:
        try:
            headers = {**self._extra_headers, **await self._credentials.headers()}
        except Exception as exc:
            raise ConnectError(f"token_provider failed: {exc!r}") from exc
        try:
            return await self._http_session().ws_connect(
                self._url, params=self._core.upgrade_params(), headers=headers, protocols=(SUBPROTOCOL,),
                heartbeat=self._core.heartbeat_interval_s or None, autoping=True,
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
            raise ConnectError(f"cannot connect to {self._url}: {exc!r}") from None

    def _http_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        return self._http

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, *, handshake_deadline: float | None) -> None:
        """Feed `ws`'s frames to the core until the socket ends or the core drops it; with a
        `handshake_deadline`, only until the handshake is over."""
        core = self._core
        loop = asyncio.get_running_loop()
        liveness = core.liveness_timeout_s()  # fixed once the handshake has told the interval
        while self._socket is ws:
            if handshake_deadline is not None:
                if not core.handshaking:
                    return
                timeout: float | None = max(0.0, handshake_deadline - loop.time())
            else:
                timeout = liveness
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                if handshake_deadline is not None:
                    error = ConnectError(f"no complete handshake within {self._connect_timeout} s")
                    actions = core.attempt_failed(error, now_ms())
                else:
                    actions = core.heartbeat_missed(timeout or 0.0, now_ms())
                await self._drop(ws)
                await self.apply(actions)
                return
            if msg.type is aiohttp.WSMsgType.TEXT or msg.type is aiohttp.WSMsgType.BINARY:
                await self.apply(core.receive(msg.data, int(time() * 1000)))  # now_ms(), inline
                continue
            if msg.type is aiohttp.WSMsgType.CLOSE:
                code, reason = int(msg.data), str(msg.extra or "")
            elif msg.type is aiohttp.WSMsgType.CLOSING:
                code, reason = 1000, "closing"
            else:
                detail = msg.data if msg.type is aiohttp.WSMsgType.ERROR else ws.exception()
                code, reason = 1006, f"connection lost: {detail!r}" if detail else "connection lost"
            actions = core.connection_lost(code, reason, now_ms())  # before awaiting: no write targets ws
            await self._drop(ws)
            await self.apply(actions)
            return

    async def _drop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        if self._socket is ws:
            self._socket = None
        if not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"client reconnecting"),
                                       min(self._close_timeout, 0.5))

    # ------------------------------------------------------------------ requests

    async def call(self, request_id: str, actions: list[Action]) -> dict[str, Any]:
        """Carry out `actions` (which send request `request_id`) and wait for its answer."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        try:
            await self.apply(actions)
            return await future
        finally:
            self._waiters.pop(request_id, None)
            if not future.done():  # the caller was cancelled
                for action in self._core.abandon_request(request_id):
                    if isinstance(action, CancelTimer):
                        self._cancel_timer(action.name)

    # ------------------------------------------------------------------ carrying out actions

    async def apply(self, actions: Sequence[Action],
                    ws: aiohttp.ClientWebSocketResponse | _Current | None = CURRENT) -> None:
        """Carry out `actions` in order; frames go to `ws`, by default the socket current
        at this call (the one the core's decision was about)."""
        if ws is CURRENT:
            ws = self._socket
        frames: list[SendFrame] = []  # consecutive frames, written together
        for action in actions:
            if isinstance(action, SendFrame):
                frames.append(action)
                continue
            if frames:
                await self._write(ws, frames)
                frames = []
            if isinstance(action, Deliver):
                if action.to_iterator or self._handlers.has_exact(action.type):
                    message = to_model(action.frame) if self._typed else action.frame
                    await self._dispatcher.put(Delivery(action.type, message, action.to_iterator))
            elif isinstance(action, DeliverReset):
                await self._dispatcher.put(Delivery(RESET_TYPE, action.event, True, reset=True))
            elif isinstance(action, ResolveRequest):
                future = self._waiters.pop(action.request_id, None)
                if future is not None and not future.done():
                    future.set_result(action.answer)
            elif isinstance(action, FailRequest):
                future = self._waiters.pop(action.request_id, None)
                if future is not None and not future.done():
                    future.set_exception(action.error)
            elif isinstance(action, StartTimer):
                self._cancel_timer(action.name)
                self._timers[action.name] = asyncio.get_running_loop().call_later(
                    action.delay_s, self._timer_fired, action.name)
            elif isinstance(action, CancelTimer):
                self._cancel_timer(action.name)
            elif isinstance(action, StateChanged):
                self._state_listeners.fire(action.state)
            elif isinstance(action, ReportError):
                self.report(action.error)
            elif isinstance(action, FetchToken):
                self._spawn(self._fetch_token())
            elif isinstance(action, DropSocket):
                if ws is not None:
                    await self._drop(ws)
            elif isinstance(action, Reconnect):
                self._reconnect_delay = action.delay_s
            elif isinstance(action, Stopped):
                await self._finish(action.error)
        if frames:
            await self._write(ws, frames)

    async def _write(self, ws: aiohttp.ClientWebSocketResponse | None, frames: list[SendFrame]) -> None:
        """Write `frames` in order; those that cannot be written go back to the core."""
        unwritten: list[SendFrame] = []
        async with self._write_lock:
            for position, frame in enumerate(frames):
                if ws is None or ws is not self._socket or ws.closed:
                    unwritten = frames[position:]
                    break
                try:
                    await ws.send_str(frame.text)
                except WRITE_ERRORS:
                    unwritten = frames[position:]
                    break
        if unwritten:
            self._core.writes_failed([f.item for f in unwritten if f.item is not None])

    def _timer_fired(self, name: str) -> None:
        self._timers.pop(name, None)
        actions = self._core.timer_fired(name, now_ms())
        if actions:
            self._spawn(self.apply(actions, self._socket))

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    async def _fetch_token(self) -> None:
        try:
            token = await self._credentials.fetch_token()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.apply(self._core.token_fetch_failed(exc, now_ms()))
            return
        await self.apply(self._core.token_fetched(token, now_ms()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("client background task failed", exc_info=task.exception())

    def report(self, error: BaseException) -> None:
        """To the error listeners; logged when there are none (and it is not the stop reason,
        which `wait_closed` and the iterator raise)."""
        if self._error_listeners:
            self._error_listeners.fire(error)
        elif error is not self._core.error:
            log.warning("%s", error)

    async def _finish(self, error: AutoSDLCError | None) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        current = asyncio.current_task()
        for task in list(self._background):
            if task is not current:
                task.cancel()
        ws = self._socket
        if ws is not None:
            await self._drop(ws)
        self._dispatcher.end(drain=error is not None)
        if self._owns_http and self._http is not None and not self._http.closed:
            await self._http.close()
        self.done.set()
