"""Keep each live connection's session record written until it lands.

A subscription change is saved in the background (a burst of changes becomes
one write). Such a write can fail: Redis restarting, or its pool exhausted by
a resume storm. Left at that, the stored record keeps the old subscriptions,
and a client resuming from it has a subscription restored late or not at all
(a reset, events missed). So a failed write is tried again, with backoff,
until it lands or the connection goes (whose final save replaces it), and at
most one write per connection is in flight, so an older state can never land
after a newer one. The final save, on disconnect, is retried the same way for
as long as the session could still be resumed (`give_up_after_s`): writes are
fenced by owner (`SessionStore.save`), so a late one cannot undo a resume
elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("autosdlc_ws.gateway")

FIRST_RETRY_S = 0.25
MAX_RETRY_S = 5.0

Write = Callable[[], Awaitable[None]]


class SessionSaves:
    def __init__(self, *, first_retry_s: float = FIRST_RETRY_S, max_retry_s: float = MAX_RETRY_S,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._first_retry_s = first_retry_s
        self._max_retry_s = max_retry_s
        self._sleep = sleep
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: keys whose state changed while their write was in flight: written once more after it
        self._dirty: set[str] = set()
        self.failures = 0  # writes that failed and were retried (all connections, since start)

    def __len__(self) -> int:
        return len(self._tasks)

    def schedule(self, key: str, write: Write, describe: str, *, give_up_after_s: float | None = None) -> None:
        """Write `key`'s record soon; `write` reads the state when it runs, so the
        latest state is what lands. Failed writes are retried until `cancel`, or
        for `give_up_after_s` seconds when given."""
        if key in self._tasks:
            self._dirty.add(key)
            return
        deadline = None if give_up_after_s is None else self._clock() + give_up_after_s
        self._tasks[key] = asyncio.get_running_loop().create_task(
            self._keep_written(key, write, describe, deadline))

    def cancel(self, key: str) -> None:
        """The connection is going (or was taken over): its own final save, if any, follows."""
        self._dirty.discard(key)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        """The gateway is stopping: drop every pending write."""
        for key in list(self._tasks):
            self.cancel(key)

    async def _keep_written(self, key: str, write: Write, describe: str, deadline: float | None) -> None:
        delay = self._first_retry_s
        failed = False
        try:
            await asyncio.sleep(0)  # let the rest of a burst of changes join this write
            while True:
                self._dirty.discard(key)
                try:
                    await write()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.failures += 1
                    if deadline is not None and self._clock() >= deadline:
                        log.warning("gave up saving session %s: %s", describe, exc)
                        return
                    if not failed:
                        log.warning("could not save session %s (retrying until it lands): %s", describe, exc)
                    failed = True
                    await self._sleep(delay)
                    delay = min(delay * 2, self._max_retry_s)
                    continue
                if failed:
                    log.info("saved session %s after retrying", describe)
                    failed = False
                if key not in self._dirty:
                    return
                delay = self._first_retry_s
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]
                self._dirty.discard(key)
