"""Handing received events to the application: the handlers, in stream order, in a task
of their own, then the `async for` iterator. Both queues are bounded, so a slow
application slows the reader, and the server closes a consumer that falls too far behind
with 4008 (the client then reconnects and resumes, so nothing is lost)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from autosdlc_ws.client.errors import AutoSDLCError
from autosdlc_ws.client.handlers import HandlerRegistry, Listeners, call

log = logging.getLogger("autosdlc_ws.client")

#: End-of-stream marker in the delivery and iterator queues.
END = object()


@dataclass(slots=True)
class Delivery:
    type: str
    message: Any
    to_iterator: bool
    reset: bool = False


class Dispatcher:
    """Runs the handlers matching each delivery, then feeds the iterator (when iterating),
    so a handler may itself `await subscribe(...)` without blocking the reader."""

    def __init__(self, handlers: HandlerRegistry, reset_listeners: Listeners,
                 report: Callable[[BaseException], None], stop_error: Callable[[], AutoSDLCError | None], *,
                 iterate: bool, queue_size: int) -> None:
        self._handlers = handlers
        self._reset_listeners = reset_listeners
        self._report = report
        self._stop_error = stop_error
        self._iterate = iterate
        self._deliveries: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        #: Queue a delivery (waits while the application is behind): the queue's own method,
        #: one call less per event.
        self.put: Callable[[Delivery], Coroutine[Any, Any, None]] = self._deliveries.put
        self._deliveries_closed = False
        self._events: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self._events_finished = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="autosdlc-ws-dispatch")


    async def stop(self) -> None:
        """Stop running handlers now (the application closed the client)."""
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def end(self, *, drain: bool) -> None:
        """No more deliveries. With `drain`, what was received still reaches the handlers
        and the iterator first (the client stopped by itself)."""
        if not drain or self._task is None or self._task.done():
            self._finish_events()
            return
        try:
            self._deliveries.put_nowait(END)
        except asyncio.QueueFull:
            self._deliveries_closed = True

    async def next_event(self) -> Any:
        """The next event for the iterator; at the end `StopAsyncIteration`, or the error the
        client stopped with."""
        if self._events_finished and self._events.empty():
            self._end_iteration()
        item = await self._events.get()
        if item is END:
            self._events.put_nowait(END)  # later calls end too
            self._end_iteration()
        return item

    def _end_iteration(self) -> None:
        error = self._stop_error()
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def _run(self) -> None:
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

    def _finish_events(self) -> None:
        self._events_finished = True
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(END)
