"""The arithmetic of `bench --max-connections`: steps, per-connection ratios, a table, 1M on paper.

Plain functions of plain numbers, so they are unit-tested without servers.
A step's reading is what the driver saw with `held` idle connections open:
the server's RSS (supervisor and workers) and its CPU seconds over an idle
window while the heartbeat pings every connection. Ratios are against the
reading before it (marginal) and against the baseline with no connections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * 1024 * 1024


def step_targets(step: int, cap: int) -> list[int]:
    """Connection counts to reach one after the other: step, 2 x step, ... up to cap (cap last)."""
    if step <= 0 or cap <= 0:
        raise ValueError("step and cap must be positive")
    targets = list(range(step, cap + 1, step))
    if not targets or targets[-1] != cap:
        targets.append(cap)
    return targets


def shares(total: int, holders: int, capacity: int, held: Sequence[int]) -> list[int]:
    """How many new connections each holder opens so that together they hold `total`:
    the same number each (the emptiest first for the remainder), never past `capacity`."""
    if len(held) != holders:
        raise ValueError("one held count per holder")
    need = total - sum(held)
    if need > holders * capacity - sum(held):
        raise ValueError(f"{total} connections need more than {holders} holders of {capacity}")
    add = [0] * holders
    while need > 0:
        room = [i for i in range(holders) if held[i] + add[i] < capacity]
        per = max(1, need // len(room))
        for i in sorted(room, key=lambda i: held[i] + add[i]):
            k = min(per, capacity - held[i] - add[i], need)
            add[i] += k
            need -= k
            if need == 0:
                break
    return add


def holders_needed(cap: int, per_holder: int) -> int:
    return max(1, math.ceil(cap / per_holder))


@dataclass(frozen=True)
class Reading:
    """The server with `held` idle connections: RSS, and CPU over an idle window."""

    held: int
    rss_bytes: int
    cpu_s: float  # server CPU seconds (all processes) during the window
    window_s: float
    redis_bytes: int = 0  # Redis's used_memory
    redis_cpu_s: float = 0.0  # Redis's CPU seconds during the window

    @property
    def cores(self) -> float:
        return self.cpu_s / self.window_s if self.window_s > 0 else 0.0


def per_connection(reading: Reading, previous: Reading, baseline: Reading, heartbeat_s: float) -> dict[str, Any]:
    """The ratios of one step: memory per connection (marginal and overall), and the idle
    CPU the connections add (per 10k connections, and per ping sent)."""
    added = reading.held - previous.held
    extra_cores = reading.cores - baseline.cores
    pings = reading.held * reading.window_s / heartbeat_s if heartbeat_s > 0 else 0.0
    redis_cores = (reading.redis_cpu_s / reading.window_s if reading.window_s > 0 else 0.0) - (
        baseline.redis_cpu_s / baseline.window_s if baseline.window_s > 0 else 0.0)
    per10k = reading.held / 10_000
    return {
        "rss_per_conn_marginal_bytes": (reading.rss_bytes - previous.rss_bytes) / added if added > 0 else None,
        "rss_per_conn_bytes": (reading.rss_bytes - baseline.rss_bytes) / reading.held if reading.held else None,
        "idle_cores": reading.cores,
        "idle_cores_per_10k": extra_cores / per10k if reading.held else None,
        "cpu_us_per_ping": extra_cores * reading.window_s / pings * 1e6 if pings else None,
        "redis_per_conn_bytes": (reading.redis_bytes - baseline.redis_bytes) / reading.held if reading.held else None,
        "redis_cores_per_10k": redis_cores / per10k if reading.held else None,
    }


@dataclass(frozen=True)
class Host:
    """The machine a 1M estimate is laid out on."""

    cores: int = 2
    ram_gib: float = 24.0
    ram_reserve_gib: float = 4.0  # kernel socket memory, the OS, headroom for bursts
    worker_base_mib: float = 80.0  # one worker's RSS with no connections
    cpu_budget: float = 0.5  # share of each core idle connections may take (the rest is for events)


def million_estimate(*, connections: int, rss_per_conn_bytes: float, idle_cores_per_10k: float,
                     host: Host, fds_per_worker: int) -> dict[str, Any]:
    """Hosts and workers for `connections` idle connections, from measured per-connection costs.

    A worker is one process on one core; a host runs one per core. Per host the
    connections are bounded by RAM (after the reserve and the workers' base),
    by the open-files limit of its workers, and by the idle CPU (heartbeat and
    the rest) within the CPU budget; the least of the three decides."""
    workers_per_host = host.cores
    ram_for_conns = (host.ram_gib - host.ram_reserve_gib) * GIB - workers_per_host * host.worker_base_mib * MIB
    by_ram = int(ram_for_conns // rss_per_conn_bytes)
    by_fds = workers_per_host * fds_per_worker
    by_cpu = int(workers_per_host * host.cpu_budget / idle_cores_per_10k * 10_000) if idle_cores_per_10k > 0 else None
    per_host = min(v for v in (by_ram, by_fds, by_cpu) if v is not None)
    hosts = math.ceil(connections / per_host)
    return {
        "connections": connections, "workers_per_host": workers_per_host,
        "per_host_by_ram": by_ram, "per_host_by_fds": by_fds, "per_host_by_idle_cpu": by_cpu,
        "per_host": per_host, "hosts": hosts, "workers": hosts * workers_per_host,
        "per_worker": math.ceil(connections / (hosts * workers_per_host)),
        "ram_gib_for_connections": connections * rss_per_conn_bytes / GIB,
        "idle_cores": connections / 10_000 * idle_cores_per_10k,
    }


# --- the table -----------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(steps: Sequence[dict[str, Any]]) -> str:
    """One line per step, as Markdown (it goes into docs/benchmarks.md as it is). "Idle CPU per
    10k" is above the baseline with no connections: the heartbeat and everything else per
    connection; "µs per ping" charges all of it to the pings (an upper bound)."""
    head = ("| connections | server RSS MiB | KiB/conn (marginal) | KiB/conn (all) | idle CPU % "
            "| idle CPU % per 10k | µs per ping | machine busy % | Redis MiB | fds per worker | ok |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in steps:
        f = s.get("figures") or {}
        marginal, overall = f.get("rss_per_conn_marginal_bytes"), f.get("rss_per_conn_bytes")
        per10k, busy, idle = f.get("idle_cores_per_10k"), s.get("machine_busy_cores"), f.get("idle_cores")
        if s["held"] == 0 and "cpu_s" in s:  # the baseline: its own idle CPU
            idle = s["cpu_s"] / s["window_s"] if s.get("window_s") else None
        lines.append(
            f"| {s['held']:,} | {s['rss_bytes'] / MIB:,.0f} | {_num(marginal and marginal / KIB, '.1f')} "
            f"| {_num(overall and overall / KIB, '.1f')} | {_num(idle and 100 * idle, '.1f')} "
            f"| {_num(per10k and 100 * per10k, '.1f')} | {_num(f.get('cpu_us_per_ping'), '.0f')} "
            f"| {_num(busy and 100 * busy, '.0f')} "
            f"| {_num(s.get('redis_used_bytes') and s['redis_used_bytes'] / MIB, '.1f')} "
            f"| {'/'.join(str(n) for n in s.get('worker_fds', [])) or '-'} | {'yes' if s.get('ok') else 'no'} |")
    return "\n".join(lines)
