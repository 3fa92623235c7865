"""`bench --max-connections`: the most idle connections this machine holds, and what each costs.

The gateway runs with several workers over Redis (a private `redis-server` on
a free port unless `--broker` names one), unpinned. Holder processes
(`conn_holder`), each bound to its own loopback source address, add idle
authenticated subscribed connections in steps until a step fails (refused,
timed out, dropped), the cap, the time budget or the memory floor is reached.
After each step the server's RSS is read, then its CPU over an idle window
in which the heartbeat pings every connection: memory per connection and
heartbeat CPU per 10k connections come from these (`capacity_figures`).
Everything started here is stopped on the way out, also on errors and Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from autosdlc_ws.bench import capacity_figures as figs
from autosdlc_ws.bench.errors import BenchError
from autosdlc_ws.bench.loadgen import LoadConfig, raise_nofile_limit
from autosdlc_ws.bench.private_redis import private_redis
from autosdlc_ws.bench.procstat import (
    alive,
    cpu_seconds,
    mem_available_bytes,
    mem_total_bytes,
    open_fds,
    rss_bytes,
    system_busy_seconds,
    worker_pids,
)
from autosdlc_ws.bench.targets import Server, start_server

#: The gateway's default `heartbeat_interval_s` (config.py), stated next to the interval used.
DEFAULT_HEARTBEAT_S = 25.0


@dataclass
class CapacityOptions:
    step: int = 5000
    cap: int = 60_000
    per_holder: int = 15_000  # connections per holder process (each has ~20,000 open files)
    workers: int = 2
    broker: str = "memory"  # memory: a private redis-server (several workers need a shared broker)
    heartbeat_s: float = 10.0  # the server's ping interval during the run
    window_s: float = 30.0  # idle window per step (a multiple of heartbeat_s: every connection pings alike)
    settle_s: float = 3.0  # after a step's last connection, before reading RSS
    step_timeout_s: float = 120.0
    time_budget_s: float = 600.0
    min_available_mib: float = 2048.0  # stop before the machine's MemAvailable drops below this
    client: str = "auto"
    first_address: int = 2  # holders bind 127.0.0.<first_address + i>
    server_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = Path("benchmarks/results/logs")


class Holder:
    """One `conn_holder` process and its JSON-lines pipe."""

    def __init__(self, proc: asyncio.subprocess.Process, address: str) -> None:
        self.proc = proc
        self.address = address
        self.asked = 0

    @classmethod
    async def start(cls, index: int, server: Server, opts: CapacityOptions, tmp: Path) -> Holder:
        address = f"127.0.0.{opts.first_address + index}"
        cfg = LoadConfig(target="gateway", base_url=server.base_url, n=opts.per_holder, token=server.token,
                         client=opts.client, progress=False, connect_timeout=opts.step_timeout_s,
                         local_addr=address, label=f"holder {index}")
        path = tmp / f"holder-{index}.json"
        path.write_text(json.dumps(cfg.to_json()))
        log = open(opts.log_dir / f"holder-{index}.log", "wb")
        with log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "autosdlc_ws.bench.conn_holder", str(path),
                "--max-seconds", str(opts.time_budget_s + 600),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log)
        return cls(proc, address)

    async def ask(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise BenchError(f"holder {self.address} exited ({self.proc.returncode})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def stop(self) -> None:
        if self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.write(b'{"stop": true}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def _broker(url: str) -> AsyncIterator[str]:
    if url != "memory":
        yield url
        return
    async with private_redis() as private:
        yield private


async def _redis_info(redis: Redis) -> tuple[int, float, int]:
    """Redis's used_memory (bytes), CPU seconds (user + system) and connected clients
    (the workers' pooled connections: open files of theirs too)."""
    info = await redis.info()
    return (int(info["used_memory"]), float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            int(info["connected_clients"]))


async def _reading(server: Server, redis: Redis, held: int, opts: CapacityOptions) -> dict[str, Any]:
    """Settle, then RSS and CPU of the server (and Redis) over the idle window."""
    await asyncio.sleep(opts.settle_s)
    _, rcpu0, _ = await _redis_info(redis)
    busy0, cpu0, t0 = system_busy_seconds(), cpu_seconds(server.pid), time.monotonic()
    await asyncio.sleep(opts.window_s)
    busy1, cpu1, t1 = system_busy_seconds(), cpu_seconds(server.pid), time.monotonic()
    rused, rcpu1, rclients = await _redis_info(redis)
    workers = worker_pids(server.pid)
    return {"held": held, "rss_bytes": rss_bytes(server.pid), "cpu_s": round(cpu1 - cpu0, 3),
            "window_s": round(t1 - t0, 3), "redis_used_bytes": rused, "redis_cpu_s": round(rcpu1 - rcpu0, 3),
            "redis_clients": rclients,
            "machine_busy_cores": round((busy1 - busy0) / (t1 - t0), 3),  # all processes: a shared machine shows
            "worker_rss_bytes": [rss_bytes(p, with_children=False) for p in workers],
            "worker_fds": [open_fds(p, with_children=False) for p in workers],
            "mem_available_bytes": mem_available_bytes()}


def _as_reading(step: dict[str, Any]) -> figs.Reading:
    return figs.Reading(held=step["held"], rss_bytes=step["rss_bytes"], cpu_s=step["cpu_s"],
                        window_s=step["window_s"], redis_bytes=step["redis_used_bytes"],
                        redis_cpu_s=step["redis_cpu_s"])


async def _grow(holders: list[Holder], target: int, opts: CapacityOptions) -> dict[str, Any]:
    add = figs.shares(target, len(holders), opts.per_holder, [h.asked for h in holders])
    t0 = time.monotonic()
    replies = await asyncio.gather(*(h.ask({"grow": k, "timeout": opts.step_timeout_s}, opts.step_timeout_s + 60)
                                     for h, k in zip(holders, add, strict=True)), return_exceptions=True)
    errors = []
    open_now = 0
    for h, k, r in zip(holders, add, replies, strict=True):
        h.asked += k
        if isinstance(r, BaseException):
            errors.append(f"{h.address}: {type(r).__name__}: {r}")
            continue
        open_now += int(r["open"])
        if r.get("error"):
            errors.append(f"{h.address}: {r['error']}")
    return {"open": open_now, "errors": errors, "connect_s": round(time.monotonic() - t0, 2)}


async def _open_count(holders: list[Holder]) -> tuple[int, dict[str, int]]:
    replies = await asyncio.gather(*(h.ask({"status": True}, 30) for h in holders), return_exceptions=True)
    total, closed = 0, {"closed": 0}
    for r in replies:
        if isinstance(r, dict):
            total += int(r["open"])
            closed["closed"] += int(r.get("errors", {}).get("closed", 0))
    return total, closed


async def run_capacity(opts: CapacityOptions) -> dict[str, Any]:
    if opts.first_address + figs.holders_needed(opts.cap, opts.per_holder) - 1 > 254:
        raise BenchError("more holders than 127.0.0.x source addresses: raise --per-holder")
    opts.log_dir.mkdir(parents=True, exist_ok=True)
    raise_nofile_limit()
    # SIGTERM (a `timeout`, a CI runner) unwinds like Ctrl-C: through the cleanup below
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    started = time.monotonic()
    env = {"AUTOSDLC_WS_HEARTBEAT_INTERVAL_S": str(opts.heartbeat_s),
           "AUTOSDLC_WS_ALERT_CONNECTIONS": "100000000", **opts.server_env}
    steps: list[dict[str, Any]] = []
    stop_reason = "cap reached"
    async with _broker(opts.broker) as broker_url:
        redis = Redis.from_url(broker_url)
        server = start_server("gateway", log_dir=opts.log_dir, workers=opts.workers, broker=broker_url,
                              extra_env=env, cpu=None, ready_timeout=60)
        holders: list[Holder] = []
        try:
            with tempfile.TemporaryDirectory(prefix="autosdlc-capacity-") as tmp:
                for i in range(figs.holders_needed(opts.cap, opts.per_holder)):
                    holders.append(await Holder.start(i, server, opts, Path(tmp)))
                base = {**await _reading(server, redis, 0, opts), "target": 0, "ok": True, "figures": None}
                steps.append(base)
                _progress(base)
                last_ok, step_s = base, 0.0
                for target in figs.step_targets(opts.step, opts.cap):
                    elapsed = time.monotonic() - started
                    if elapsed + step_s > opts.time_budget_s:
                        stop_reason = f"time budget ({opts.time_budget_s:.0f} s)"
                        break
                    if mem_available_bytes() < opts.min_available_mib * figs.MIB:
                        stop_reason = f"memory floor ({opts.min_available_mib:.0f} MiB available)"
                        break
                    t_step = time.monotonic()
                    grown = await _grow(holders, target, opts)
                    if grown["errors"] or grown["open"] < target or server.proc.poll() is not None:
                        steps.append({"target": target, "held": grown["open"], "ok": False,
                                      "rss_bytes": rss_bytes(server.pid), "connect_s": grown["connect_s"],
                                      "errors": grown["errors"][:5], "figures": None,
                                      "worker_fds": [open_fds(p, with_children=False)
                                                     for p in worker_pids(server.pid)]})
                        stop_reason = f"step to {target:,} failed"
                        _progress(steps[-1])
                        break
                    step = {**await _reading(server, redis, target, opts), "target": target,
                            "connect_s": grown["connect_s"]}
                    still_open, closed = await _open_count(holders)
                    step["held_after_window"] = still_open
                    step["ok"] = still_open == target and server.proc.poll() is None
                    step["figures"] = figs.per_connection(_as_reading(step), _as_reading(last_ok),
                                                          _as_reading(base), opts.heartbeat_s)
                    steps.append(step)
                    _progress(step)
                    if not step["ok"]:
                        stop_reason = f"connections dropped at {target:,} ({closed})"
                        break
                    last_ok, step_s = step, time.monotonic() - t_step
        finally:  # the server while Redis is up (its workers release slots and save sessions there)
            killed = _stop_server(server)
            await asyncio.gather(*(h.stop() for h in holders), return_exceptions=True)
            await redis.aclose()
    result = summarize(steps, opts, stop_reason, time.monotonic() - started)
    result["workers_killed_at_stop"] = killed
    return result


def _stop_server(server: Server, grace_s: float = 30.0) -> list[int]:
    """Stop the supervisor, then SIGKILL any worker still running `grace_s` later: a worker
    with tens of thousands of connections (or out of open files) may outlive its supervisor."""
    workers = worker_pids(server.pid)
    server.stop(timeout=grace_s)
    deadline = time.monotonic() + grace_s
    left = [p for p in workers if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if alive(p)]
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


def _progress(step: dict[str, Any]) -> None:
    f = step.get("figures") or {}
    per = f.get("rss_per_conn_marginal_bytes")
    print(f"  {step['held']:>7,} connections  RSS {step['rss_bytes'] / figs.MIB:8,.0f} MiB"
          + (f"  marginal {per / figs.KIB:5.1f} KiB/conn" if per else "")
          + (f"  idle CPU {100 * f['idle_cores']:5.1f} %" if f else "")
          + ("" if step.get("ok") else "  FAILED"), file=sys.stderr, flush=True)


def summarize(steps: list[dict[str, Any]], opts: CapacityOptions, stop_reason: str,
              duration_s: float) -> dict[str, Any]:
    ok = [s for s in steps if s.get("ok") and s["held"]]
    big = [s for s in ok if s["held"] >= 10_000] or ok
    per_10k = [s["figures"]["idle_cores_per_10k"] for s in big if s["figures"]["idle_cores_per_10k"] is not None]
    per_ping = [s["figures"]["cpu_us_per_ping"] for s in big if s["figures"]["cpu_us_per_ping"] is not None]
    marginal = [s["figures"]["rss_per_conn_marginal_bytes"] for s in big
                if s["figures"]["rss_per_conn_marginal_bytes"] is not None]
    summary: dict[str, Any] = {
        "max_held": max((s["held"] for s in ok), default=0),
        "peak_held": max((s["held"] for s in steps), default=0),
        "stop_reason": stop_reason,
        "rss_per_conn_bytes": ok[-1]["figures"]["rss_per_conn_bytes"] if ok else None,
        "rss_per_conn_marginal_bytes_median": statistics.median(marginal) if marginal else None,
        "idle_cores_per_10k_median": statistics.median(per_10k) if per_10k else None,
        "cpu_us_per_ping_median": statistics.median(per_ping) if per_ping else None,
        "redis_per_conn_bytes": ok[-1]["figures"]["redis_per_conn_bytes"] if ok else None,
    }
    per_conn, idle = summary["rss_per_conn_bytes"], summary["idle_cores_per_10k_median"]
    if per_conn and idle is not None:
        host = figs.Host(worker_base_mib=steps[0]["rss_bytes"] / (opts.workers + 1) / figs.MIB)
        summary["million"] = {"host": asdict(host), **{
            key: figs.million_estimate(connections=1_000_000, rss_per_conn_bytes=per_conn,
                                       idle_cores_per_10k=max(idle, 0.0), host=host, fds_per_worker=fds)
            for key, fds in (("fds_20000", 20_000), ("fds_raised", 1_000_000))}}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        ports = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except OSError:
        ports = []
    return {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
            "heartbeat": {"interval_s": opts.heartbeat_s, "pong_timeout_s": opts.heartbeat_s / 2,
                          "default_interval_s": DEFAULT_HEARTBEAT_S},
            "limits": {"nofile": [soft, hard], "ephemeral_ports": [int(p) for p in ports],
                       "mem_total_gib": round(mem_total_bytes() / figs.GIB, 1)},
            "duration_s": round(duration_s, 1), "summary": summary, "steps": steps,
            "table": figs.table(steps)}

