"""Error aggregation: errors grouped by (code, message type), given the time.

Each group keeps a count, the first and last occurrence, the last message and
a one-minute rate. `record` returns the group when its rate has just crossed
the alert threshold (once per crossing, re-armed when it falls below half),
so the caller can publish one `system_alert` per burst, not one per error.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_S = 60.0


@dataclass(slots=True)
class ErrorGroup:
    code: str
    message_type: str
    count: int = 0
    first_ms: int = 0
    last_ms: int = 0
    last_message: str = ""
    alerting: bool = False
    _recent: deque[float] = field(default_factory=deque)

    def rate_per_min(self, now_s: float) -> int:
        recent = self._recent
        while recent and recent[0] <= now_s - WINDOW_S:
            recent.popleft()
        return len(recent)

    def to_json(self, now_s: float) -> dict[str, Any]:
        return {"code": self.code, "messageType": self.message_type, "count": self.count,
                "firstAt": self.first_ms, "lastAt": self.last_ms, "lastMessage": self.last_message,
                "ratePerMin": self.rate_per_min(now_s), "alerting": self.alerting}


class ErrorAggregator:
    def __init__(self, *, alert_per_min: float, max_groups: int = 1000) -> None:
        self._alert_per_min = alert_per_min
        self._max_groups = max_groups
        self._groups: dict[tuple[str, str], ErrorGroup] = {}

    def record(self, code: str, message_type: str, message: str, *, now_ms: int, now_s: float
               ) -> ErrorGroup | None:
        key = (code, message_type)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self._max_groups:
                key = (code, "other")
                group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = ErrorGroup(key[0], key[1], first_ms=now_ms)
        group.count += 1
        group.last_ms = now_ms
        group.last_message = message[:200]
        group._recent.append(now_s)
        rate = group.rate_per_min(now_s)
        if not group.alerting and self._alert_per_min > 0 and rate >= self._alert_per_min:
            group.alerting = True
            return group
        if group.alerting and rate < self._alert_per_min / 2:
            group.alerting = False
        return None

    def snapshot(self, now_s: float) -> list[dict[str, Any]]:
        groups = sorted(self._groups.values(), key=lambda g: g.last_ms, reverse=True)
        return [g.to_json(now_s) for g in groups]
