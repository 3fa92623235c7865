"""How many sessions a worker starts or resumes at once.

A resume storm (hundreds of clients reconnecting together after a network cut
or a worker restart) used to run every resume at once: hundreds of broker
round trips queued for a pool of 64 connections, the ones that waited past
the pool's timeout were closed 1013 and came back as new handshakes. Past `limit`, a
session start waits here instead, in arrival order; only one that waits
longer than `wait_s` is refused (`BrokerUnavailable`: the caller closes 1013
and the client retries).
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from autosdlc_ws.errors import BrokerUnavailable

#: Enough to keep a worker's broker pool (64 connections) busy, not to exhaust it:
#: a resume makes about five round trips, one at a time.
SESSION_STARTS_AT_ONCE = 32
#: A start that waited this long is refused with 1013 (the SDKs retry).
SESSION_START_WAIT_S = 10.0


class StartGate:
    def __init__(self, limit: int = SESSION_STARTS_AT_ONCE, wait_s: float = SESSION_START_WAIT_S) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._slots = asyncio.Semaphore(limit)
        self._wait_s = wait_s
        self.limit = limit
        self.waiting = 0  # starts queued at the gate now
        self.running = 0  # starts past it

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise BrokerUnavailable(
                f"{self.limit} sessions are starting on this worker; retry shortly") from None
        finally:
            self.waiting -= 1
        self.running += 1

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.running -= 1
        self._slots.release()
