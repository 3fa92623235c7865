"""Limits counted by this process alone: the memory broker's, and the Redis
broker's fallback while Redis is unreachable (see `redis_limits`).

Plain data and an injected clock: no I/O, nothing shared.
"""

from __future__ import annotations

from collections.abc import Callable

from autosdlc_ws.core.ratelimit import KeyedBuckets


class LocalSlots:
    """Connection holders per identity, at most `limit` each."""

    def __init__(self) -> None:
        self.holders: dict[str, set[str]] = {}

    def take(self, identity: str, holder_id: str, limit: int) -> bool:
        holders = self.holders.get(identity)
        if holders is not None and holder_id in holders:
            return True
        if (len(holders) if holders else 0) >= limit:
            return False
        self.holders.setdefault(identity, set()).add(holder_id)
        return True

    def add(self, identity: str, holder_id: str) -> None:
        """Record a slot granted elsewhere (by the shared store)."""
        self.holders.setdefault(identity, set()).add(holder_id)

    def drop(self, identity: str, holder_id: str) -> None:
        holders = self.holders.get(identity)
        if holders is None:
            return
        holders.discard(holder_id)
        if not holders:
            del self.holders[identity]

    def holds(self, identity: str, holder_id: str) -> bool:
        return holder_id in self.holders.get(identity, ())

    def __bool__(self) -> bool:
        return bool(self.holders)


class LocalBuckets:
    """Token buckets by key, one `KeyedBuckets` per (rate, burst), on `clock` (seconds)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_shape: dict[tuple[float, float], KeyedBuckets] = {}

    def take(self, key: str, rate_per_s: float, burst: float, cost: float) -> int:
        limiter = self._by_shape.get((rate_per_s, burst))
        if limiter is None:
            limiter = self._by_shape[(rate_per_s, burst)] = KeyedBuckets(rate_per_s, burst)
        return limiter.take(key, self._clock(), cost)
