"""After a sibling worker dies, a worker takes only its share of the clients coming back.

With `serve --workers N` the kernel spreads new connections evenly over the
workers that are listening (SO_REUSEPORT). When a worker dies, its clients
come back within a second or two, and an even spread gives every survivor
its part of them on top of what it held, while the replacement starts
empty; that imbalance then lasts as long as the connections do, and a
worker's memory stays at the high-water mark of the connections it has held
(freed connections leave pages shared with the ones that stay).

So for a while after a sibling's death (`RECOVERY_S`), a worker that holds
more than its share of the deployment's connections as they were before the
death (`MARGIN` over), while a live sibling holds less than that share,
answers new upgrades 503 `rebalancing`: the client retries and the kernel
spreads the retry again. Nothing changes otherwise: start-up ramps and the
ordinary wobble of an even spread never turn anyone away (comparing live
counts with siblings' counts a second old would: both look over).

Plain values only; the gateway feeds it once a second from the siblings'
metrics snapshots (`StatsCollector.sibling_counts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: How long after noticing a sibling's death its clients are steered (they return within seconds).
RECOVERY_S = 60.0
#: Over the share by this fraction before turning away.
MARGIN = 0.05
#: A dead sibling's last snapshot older than this says nothing about clients coming back now.
FRESH_DEATH_S = 10.0


@dataclass
class Rebalancer:
    """One worker's view: which siblings it has seen die, and the share it keeps to until
    the replacement has filled up (or `RECOVERY_S` has passed)."""

    workers: int  # the deployment's worker count (`--workers`)
    share: float = 0.0  # connections per worker expected once the dead one's clients are back
    until: float = 0.0  # monotonic seconds; steering off after this
    _dead_seen: set[int] = field(default_factory=set)
    _min_sibling: int | None = None  # None: no live sibling reporting

    def observe(self, now: float, local: int, live: Mapping[int, int],
                dead: Mapping[int, tuple[int, float]]) -> None:
        """Once a second: `live` sibling pid -> open connections, `dead` sibling pid ->
        (connections in its last snapshot, seconds since that snapshot)."""
        fresh = [count for pid, (count, age) in dead.items() if pid not in self._dead_seen and age < FRESH_DEATH_S]
        self._dead_seen.update(dead)
        if fresh:
            self.share = (local + sum(live.values()) + sum(fresh)) / max(1, self.workers)
            self.until = now + RECOVERY_S
        self._min_sibling = min(live.values()) if live else None
        if self._min_sibling is not None and self._min_sibling >= self.share:
            self.until = min(self.until, now)  # the replacement has its share: done

    def turn_away(self, now: float, local: int) -> bool:
        """Should an upgrade to this worker, holding `local` connections, be refused?"""
        return (now < self.until and self._min_sibling is not None and self._min_sibling < self.share
                and local >= self.share * (1 + MARGIN))
