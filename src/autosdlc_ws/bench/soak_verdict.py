"""The soak run's pass/fail rules, on plain values (tested without a server).

Three checks, as issue 18 states them:
- memory flat after warm-up: the mean of the first `MEMORY_WINDOW` samples
  after warm-up against the mean of the last ones grows less than 5 %;
- no lost and no duplicated event for the well-behaved clients: each keeps a
  `SeqTracker` per resource it follows (events carry a per-resource sequence
  number), and at the end the tail it never got counts as lost;
- no error-level line in the gateway's log: every line is classified by the
  level the gateway's formatters write (`level=ERROR` in text, `"level":
  "ERROR"` in JSON); a Python traceback counts as an error too.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_GROWTH = 0.05
MAX_GAPS_KEPT = 10
MEMORY_WINDOW = 3
ERROR_LEVELS = ("ERROR", "CRITICAL")

_TEXT_LEVEL = re.compile(r"(?:^|\s)level=([A-Za-z]+)(?:\s|$)")


@dataclass(slots=True)
class SeqTracker:
    """What one client received of one resource's numbered events, in arrival order.

    `first` is the number it should start at (None: whatever comes first, for a
    client that subscribed while events were already flowing). An event past
    the next expected one counts the skipped ones as lost; one at or before the
    last seen counts as a duplicate (or late, which is as wrong)."""

    first: int | None = 0
    last: int | None = None
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    # the first few holes, [after, next received], to line them up with faults and resets
    gaps: list[list[int]] = field(default_factory=list)

    def add(self, seq: int) -> None:
        self.received += 1
        if self.last is None:
            if self.first is not None and seq > self.first:
                self.lost += seq - self.first
            self.first = seq if self.first is None else self.first
            self.last = seq
            return
        if seq <= self.last:
            self.duplicated += 1
            return
        if seq > self.last + 1:
            self.lost += seq - self.last - 1
            if len(self.gaps) < MAX_GAPS_KEPT:
                self.gaps.append([self.last, seq])
        self.last = seq

    def tail_lost(self, final_seq: int | None) -> int:
        """Events up to `final_seq` (the last one published) that never came."""
        if final_seq is None:
            return 0
        if self.last is None:
            start = self.first if self.first is not None else final_seq + 1
            return max(0, final_seq - start + 1)
        return max(0, final_seq - self.last)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def delivery_totals(clients: Iterable[Mapping[str, Any]], final_seqs: Mapping[str, int]) -> dict[str, int]:
    """Sum over clients (`{"resource", "tracker": SeqTracker.to_json()}`) of lost and duplicated events,
    the tail each missed at the end included."""
    totals = {"clients": 0, "received": 0, "lost": 0, "duplicated": 0, "tail_lost": 0,
              "clients_with_loss": 0, "clients_with_duplicates": 0}
    for client in clients:
        t = client["tracker"]
        tracker = SeqTracker(first=t["first"], last=t["last"], received=t["received"], lost=t["lost"],
                             duplicated=t["duplicated"])
        tail = tracker.tail_lost(final_seqs.get(client["resource"]))
        totals["clients"] += 1
        totals["received"] += tracker.received
        totals["lost"] += tracker.lost + tail
        totals["tail_lost"] += tail
        totals["duplicated"] += tracker.duplicated
        totals["clients_with_loss"] += int(tracker.lost + tail > 0)
        totals["clients_with_duplicates"] += int(tracker.duplicated > 0)
    return totals


def memory_growth(samples: Sequence[tuple[float, float]], warmup_s: float,
                  window: int = MEMORY_WINDOW) -> dict[str, Any]:
    """Relative growth of memory from just after warm-up to the end.

    `samples` are (seconds since the start, bytes). Needs 2 x `window` samples
    after warm-up, else `growth` is None (the run was too short to judge)."""
    after = [b for t, b in samples if t >= warmup_s]
    if len(after) < 2 * window or window < 1:
        return {"growth": None, "first_mean": None, "last_mean": None, "samples": len(after)}
    first = statistics.fmean(after[:window])
    last = statistics.fmean(after[-window:])
    return {"growth": (last - first) / first if first else None, "first_mean": first, "last_mean": last,
            "samples": len(after)}


def survivors_rss(samples: Sequence[Mapping[str, Any]], warmup_s: float) -> list[tuple[float, float]]:
    """(t, bytes) of the processes alive in every sample after warm-up: the memory of the
    processes that were not restarted (a killed worker's replacement starts small and
    would hide growth in the total)."""
    after = [s for s in samples if s["t"] >= warmup_s]
    if not after:
        return []
    alive = set.intersection(*(set(s["per_pid"]) for s in after))
    return [(s["t"], float(sum(s["per_pid"][p]["rss_bytes"] for p in alive))) for s in after]


def named_rss(samples: Sequence[Mapping[str, Any]], prefix: str) -> list[tuple[float, float]]:
    """(t, bytes) of the processes whose name starts with `prefix` (the workers): the same
    processes whether or not the server runs helpers beside them (its fork server)."""
    return [(s["t"], float(sum(v["rss_bytes"] for v in s["per_pid"].values()
                               if str(v.get("name", "")).startswith(prefix)))) for s in samples]


def log_level(line: str) -> str | None:
    """The level of one gateway log line: "ERROR", "WARNING", ...; "TRACEBACK" for the start of a
    Python traceback; None for a line without one (the supervisor's plain status lines)."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("Traceback (most recent call last)"):
        return "TRACEBACK"
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        level = obj.get("level") if isinstance(obj, dict) else None
        if isinstance(level, str):
            return level.upper()
    match = _TEXT_LEVEL.search(text)
    return match.group(1).upper() if match else None


def classify_log(lines: Iterable[str], *, keep: int = 10) -> dict[str, Any]:
    """Lines per level, and the first `keep` error-level lines (tracebacks included)."""
    levels: Counter[str] = Counter()
    errors: list[str] = []
    for line in lines:
        level = log_level(line) or "PLAIN"
        levels[level] += 1
        if is_error_level(level) and len(errors) < keep:
            errors.append(line.rstrip()[:400])
    return {"levels": dict(levels), "error_lines": sum(n for lv, n in levels.items() if is_error_level(lv)),
            "first_errors": errors}


def is_error_level(level: str) -> bool:
    return level in ERROR_LEVELS or level == "TRACEBACK"


def verdict(memory: Mapping[str, Any], deliveries: Mapping[str, int], log: Mapping[str, Any],
            *, max_growth: float = MAX_GROWTH) -> dict[str, Any]:
    """Pass only when all three checks pass; a check that could not be judged fails."""
    growth = memory.get("growth")
    checks = {
        "memory_flat": growth is not None and growth < max_growth,
        "no_loss": deliveries.get("clients", 0) > 0 and deliveries.get("lost", 1) == 0,
        "no_duplicates": deliveries.get("clients", 0) > 0 and deliveries.get("duplicated", 1) == 0,
        "no_error_logs": log.get("error_lines", 1) == 0,
    }
    return {"pass": all(checks.values()), "checks": checks, "max_growth": max_growth}
