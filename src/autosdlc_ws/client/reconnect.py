"""When the client tries its next connection after losing one, and when it gives up."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from autosdlc_ws.client.backoff import Backoff, ReconnectPolicy
from autosdlc_ws.client.errors import ConnectError, ReconnectFailed

log = logging.getLogger("autosdlc_ws.client")


class ReconnectPlan:
    """Full-jitter backoff over the failed attempts in a row (reset once a connection stayed
    up `stable_after` seconds), never sooner than a refused upgrade's `Retry-After`."""

    def __init__(self, policy: ReconnectPolicy | None, rng: Callable[[], float] = random.random) -> None:
        self._policy = policy
        self._backoff = Backoff(policy.base, policy.cap, policy.max_attempts, rng) if policy else None
        self._last_error: ConnectError | None = None
        self._retry_after: float | None = None

    @property
    def enabled(self) -> bool:
        return self._policy is not None

    def connection_lost(self, up_for_s: float) -> None:
        """An open connection ended after `up_for_s` seconds: attempts start again."""
        assert self._policy is not None and self._backoff is not None
        if up_for_s >= self._policy.stable_after:
            self._backoff.reset()
        self._last_error, self._retry_after = None, None

    def attempt_failed(self, error: ConnectError) -> None:
        assert self._backoff is not None
        log.debug("reconnect attempt %d failed: %s", self._backoff.attempts, error)
        self._last_error, self._retry_after = error, error.retry_after

    def next_delay(self) -> float | ReconnectFailed:
        """Seconds to wait before the next attempt, or the error to stop with."""
        assert self._backoff is not None
        delay = self._backoff.next_delay()
        if delay is None:
            return ReconnectFailed(self._backoff.attempts, self._last_error)
        return delay if self._retry_after is None else max(delay, self._retry_after)
