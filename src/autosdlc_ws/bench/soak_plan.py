"""The soak run's settings and its timeline of faults, as plain values.

Times are seconds since publishing started (every connection subscribed).
Resume storms come every `storm_every` s, offset by half a period; the
Redis restart at 50 % of the run and the worker SIGKILL at 70 %, after the
warm-up so the memory check sees their effect. A storm within
`FAULT_GAP_S` of another fault is left out, so each fault's effect shows on
its own, and nothing is scheduled in the last `TAIL_S` s: the clients have
time to recover before the final accounting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_GAP_S = 10.0
TAIL_S = 20.0
REDIS_AT = 0.5
KILL_AT = 0.7


@dataclass
class SoakPlan:
    duration: float = 1800.0
    connections: int = 5000
    rate: float = 200.0  # events/s published, spread round-robin over the resources
    resources: int = 100  # agentIds: each connection follows one, so a client gets rate/resources events/s
    sdk_clients: int = 500  # of the connections: SDK clients whose deliveries are judged
    churn: float = 10.0  # light connections closed and replaced per second
    storm_every: float = 300.0
    storm_size: int = 500  # SDK clients cut at once by a storm
    workers: int = 2
    load_procs: int = 2
    sample_every: float = 10.0
    warmup: float = 300.0
    redis_down: float = 2.0  # seconds Redis stays stopped
    drain: float = 10.0  # seconds after the last publish before the accounting
    redis_persistence: str = "always"  # appendfsync always | everysec | none (see soak_faults)
    redis_restart: bool = True
    worker_kill: bool = True
    server_env: dict[str, str] = field(default_factory=dict)  # extra environment of the gateway

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_warmup(duration: float) -> float:
    """A sixth of the run, at least 20 s, at most 300 s."""
    return min(300.0, max(20.0, duration / 6))


def quick_plan() -> SoakPlan:
    """`--quick`: two minutes, 500 connections, a storm every 30 s (a smoke run, not a verdict)."""
    return SoakPlan(duration=120.0, connections=500, rate=200.0, resources=100, sdk_clients=100,
                    churn=5.0, storm_every=30.0, storm_size=100, load_procs=1, sample_every=5.0,
                    warmup=30.0)


def timeline(plan: SoakPlan) -> list[tuple[float, str]]:
    """(time, kind) of every fault, in order: "storm", "redis_restart", "worker_kill"."""
    end = plan.duration - TAIL_S
    faults: list[tuple[float, str]] = []
    if plan.redis_restart:
        faults.append((round(plan.duration * REDIS_AT, 1), "redis_restart"))
    if plan.worker_kill:
        faults.append((round(plan.duration * KILL_AT, 1), "worker_kill"))
    faults = [(t, k) for t, k in faults if t <= end]
    storms: list[tuple[float, str]] = []
    if plan.storm_every > 0 and plan.storm_size > 0:
        t = plan.storm_every / 2
        while t <= end:
            if all(abs(t - ft) >= FAULT_GAP_S for ft, _ in faults):
                storms.append((round(t, 1), "storm"))
            t += plan.storm_every
    return sorted(faults + storms)


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` as evenly as integers allow."""
    parts = max(1, parts)
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
