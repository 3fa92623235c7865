"""Exponential backoff with full jitter, and the reconnect policy built on it.

Full jitter: the n-th delay (n from 0) is uniform in ``[0, min(cap, base * 2**n))``.
Clients that lost the same server at the same instant therefore spread their
reconnects instead of arriving in synchronized waves.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


def full_jitter(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Delay before retry number `attempt` (0-based)."""
    return rng() * min(cap, base * 2.0 ** min(attempt, 62))


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How the WebSocket client reconnects after a connection it had is lost.

    base, cap: seconds of the full-jitter backoff (see module doc).
    max_attempts: failed attempts in a row before giving up (`ReconnectFailed`); None = forever.
    stable_after: seconds a connection must stay open before the attempt count resets, so a
        server that accepts and drops at once still meets a growing backoff.
    """

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int | None = None
    stable_after: float = 10.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("ReconnectPolicy needs 0 < base <= cap")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("ReconnectPolicy.max_attempts must be at least 1 (or None)")


class Backoff:
    """Counts attempts and hands out full-jitter delays; None once attempts are exhausted."""

    def __init__(self, base: float, cap: float, max_attempts: int | None = None,
                 rng: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self.max_attempts = max_attempts
        self.attempts = 0
        self._rng = rng

    def next_delay(self) -> float | None:
        if self.max_attempts is not None and self.attempts >= self.max_attempts:
            return None
        delay = full_jitter(self.attempts, self.base, self.cap, self._rng)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
