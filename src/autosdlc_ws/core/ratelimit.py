"""Token buckets, given the current time: no clock of their own, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float = -1.0
    updated_at: float = 0.0  # seconds, caller's monotonic clock

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float, cost: float = 1.0) -> int:
        """0 when allowed (and charged), else milliseconds until it would be."""
        elapsed = now - self.updated_at
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
            self.updated_at = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0
        if self.rate_per_s <= 0:
            return 60_000
        return max(1, math.ceil((cost - self.tokens) / self.rate_per_s * 1000))


class KeyedBuckets:
    """One bucket per key (message kind, identity, IP), created on first use."""

    def __init__(self, rate_per_s: float, burst: float, *, max_keys: int = 100_000) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float, cost: float = 1.0) -> int:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._evict_full(now)
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, updated_at=now)
        return bucket.take(now, cost)

    def _evict_full(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing."""
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated_at) * bucket.rate_per_s >= bucket.burst:
                del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            # Still full: forget the bucket closest to full, the one whose loss
            # changes least. Dropping the oldest key instead could hand a fresh
            # burst to the key that has been using up its bucket the longest.
            fullest = max(
                self._buckets,
                key=lambda k: self._buckets[k].tokens + (now - self._buckets[k].updated_at) * self._rate,
            )
            del self._buckets[fullest]
