"""Handler registry and the callback helpers (sync or async callables)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from autosdlc_ws.client.events import matches, validate_pattern

log = logging.getLogger("autosdlc_ws.client")

#: A handler or callback: a plain function or a coroutine function, given one argument.
Handler = Callable[[Any], Any]
Unsubscribe = Callable[[], None]


async def call(callback: Handler, arg: Any) -> None:
    """Call `callback(arg)`, awaiting the result when it is awaitable."""
    result = callback(arg)
    if inspect.isawaitable(result):
        await result


class HandlerRegistry:
    """`(pattern, handler)` pairs in registration order."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, Handler]] = []

    def add(self, pattern: str, handler: Handler) -> Unsubscribe:
        validate_pattern(pattern)
        entry = (pattern, handler)
        self._entries.append(entry)

        def unsubscribe() -> None:
            if entry in self._entries:
                self._entries.remove(entry)

        return unsubscribe

    def remove(self, pattern: str, handler: Handler) -> bool:
        for entry in self._entries:
            if entry[0] == pattern and entry[1] == handler:
                self._entries.remove(entry)
                return True
        return False

    def matching(self, type_: str) -> list[Handler]:
        return [h for p, h in self._entries if matches(p, type_)]

    def has_exact(self, type_: str) -> bool:
        return any(p == type_ for p, _ in self._entries)


class Listeners:
    """Plain callbacks (state changes, errors): sync ones run inline, async ones as tasks."""

    def __init__(self) -> None:
        self._callbacks: list[Handler] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, callback: Handler) -> Unsubscribe:
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def fire(self, arg: Any) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(arg)
            except Exception:
                log.exception("callback %r failed", callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(_guard(result, callback))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def run(self, arg: Any) -> None:
        """Await every callback in turn (used where order matters: reset callbacks)."""
        for callback in list(self._callbacks):
            try:
                await call(callback, arg)
            except Exception:
                log.exception("callback %r failed", callback)


async def _guard(awaitable: Any, callback: Handler) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("callback %r failed", callback)
