"""Threshold alerts with hysteresis, given readings and the time: no I/O.

An alert fires when a reading stays at or above `fire_at` for `hold_s`
seconds, and resolves only when it falls to `clear_at` or below (lower than
`fire_at`). A value hovering around one threshold therefore yields one alert,
not a flood of fire/resolve pairs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Transition:
    rule: str
    fired: bool  # True: the alert started; False: it resolved
    value: float
    threshold: float


@dataclass(slots=True)
class ThresholdRule:
    name: str
    fire_at: float
    clear_at: float
    hold_s: float = 0.0
    active: bool = False
    _above_since: float | None = None

    def __post_init__(self) -> None:
        if self.clear_at > self.fire_at:
            raise ValueError(f"{self.name}: clear_at must not exceed fire_at")

    def observe(self, value: float, now_s: float) -> Transition | None:
        if not self.active:
            if value >= self.fire_at:
                if self._above_since is None:
                    self._above_since = now_s
                if now_s - self._above_since >= self.hold_s:
                    self.active = True
                    self._above_since = None
                    return Transition(self.name, True, value, self.fire_at)
            else:
                self._above_since = None
            return None
        if value <= self.clear_at:
            self.active = False
            return Transition(self.name, False, value, self.clear_at)
        return None


@dataclass(slots=True)
class RateWindow:
    """Events per minute from a monotonically growing counter."""

    last_count: int = 0
    last_time_s: float | None = None

    def rate_per_min(self, count: int, now_s: float) -> float:
        if self.last_time_s is None or now_s <= self.last_time_s:
            self.last_count, self.last_time_s = count, now_s
            return 0.0
        rate = (count - self.last_count) * 60.0 / (now_s - self.last_time_s)
        self.last_count, self.last_time_s = count, now_s
        return max(0.0, rate)
