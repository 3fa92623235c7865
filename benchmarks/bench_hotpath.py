"""The gateway's fan-out hot path without the kernel: Python cost per delivery.

Builds a real `Gateway` with N real `server.connection.Connection` objects whose
transports only count bytes (no system call), subscribes each to `agent_log`,
and times `Hub.on_broker_event` plus the loop iteration that flushes the
connections, for one event per tick and for 50 per tick. The system call that a
real `transport.write` makes (the dominant cost end to end) is left out, so this
shows what changes to hub.py / connection.py / envelope.py / frames.py buy,
with far less noise than an end-to-end run on a shared machine.

    .venv/bin/python benchmarks/bench_hotpath.py [--n 1000] [--events 2000] [--runs 7] [--cpu 0]

`--control memory` (or `--control redis://HOST:PORT/DB`) times each run twice,
back to back: once as above, once with the deployment registry running beside
the deliveries (the control channel registered and heartbeating, its Pub/Sub
reader listening on Redis, and the gateway's once-a-second stats tick pushing
the node's figures), and reports the ratio of the paired medians. Pairing the
runs in one process keeps a busy machine's drift out of the ratio.

`--batch` pairs the same way every connection without and with batched
frames (`batch=1`: the events due to a connection in one flush go out as one
JSON array), at 1, 5 and 50 events per tick; `--batch --no-memo` builds each
connection's arrays itself instead of once per flush for all recipients (what
the per-flush memo saves). `--loop uvloop` runs any of these on uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from autosdlc_ws.broker.base import BrokerEvent
from autosdlc_ws.broker.control import ControlChannel
from autosdlc_ws.broker.memory import memory_backend
from autosdlc_ws.broker.memory_control import MemoryControlChannel
from autosdlc_ws.broker.redis_control import RedisControlChannel
from autosdlc_ws.broker.trail import SendTrail
from autosdlc_ws.config import Settings
from autosdlc_ws.core.connection_core import ConnectionCore
from autosdlc_ws.core.subscriptions import Subscription
from autosdlc_ws.server import connection as connection_module
from autosdlc_ws.server.admin_view import register_commands
from autosdlc_ws.server.connection import Connection
from autosdlc_ws.server.event_loop import run as run_on_loop
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.server.local_admin import GatewayAdmin

RESULTS = Path(__file__).resolve().parent / "results" / "hotpath-latest.json"


class CountingTransport:
    __slots__ = ("bytes", "writes")

    def __init__(self) -> None:
        self.writes = 0
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:  # pragma: no cover - never closed here
        pass


class NullWS:
    async def close(self, **_: Any) -> bool:  # pragma: no cover - never closed here
        return True


def build(n: int) -> tuple[Gateway, list[CountingTransport], list[Connection]]:
    settings = Settings(jwt_secret="x" * 32)
    gateway = Gateway(settings, backend=memory_backend())
    transports = []
    conns = []
    for i in range(n):
        core = ConnectionCore(settings=settings, authenticator=gateway.authenticator,
                              connection_id=f"conn-{i}", session_id=f"sess-{i}", opened_at_ms=0)
        transport = CountingTransport()
        conn = Connection(gateway, NullWS(), transport, core, "127.0.0.1")  # type: ignore[arg-type]
        gateway.hub.index.add(Subscription(f"sub-{i}", conn, ("agent_log",), frozenset({"agent_log"}), {}))
        transports.append(transport)
        conns.append(conn)
    return gateway, transports, conns


def event(seq: int) -> dict[str, Any]:
    return {"id": f"evt-{seq}", "type": "agent_log", "timestamp": 1_700_000_000_000,
            "data": {"agentId": "bench-agent", "level": "info", "message": "x" * 150, "seq": seq,
                     "t": 1_000_000_000_000},
            "metadata": {"version": "1.0", "source": "bench"}}


async def measure(gateway: Gateway, events: int, per_tick: int) -> float:
    """Seconds of CPU per delivery: publish `per_tick` events, let the loop flush, repeat."""
    hub = gateway.hub
    records = [BrokerEvent(event(i), i + 1, "e") for i in range(events)]
    n = len(gateway.hub.index)
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for i in range(0, events, per_tick):
            for record in records[i:i + per_tick]:
                hub.on_broker_event(record)
            await asyncio.sleep(0)  # the iteration in which the connections flush
        await asyncio.sleep(0)
        elapsed = time.process_time() - start
    finally:
        gc.enable()
    return elapsed / (events * n)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    gateway, transports, _ = build(args.n)
    await measure(gateway, max(50, args.events // 10), 1)  # warm up
    out: dict[str, Any] = {}
    for per_tick in (1, 50):
        samples = [await measure(gateway, args.events, per_tick) for _ in range(args.runs)]
        out[f"{per_tick}_per_tick"] = {"ns_per_delivery": statistics.median(samples) * 1e9,
                                       "min": min(samples) * 1e9, "max": max(samples) * 1e9}
    writes = sum(t.writes for t in transports)
    out["writes"] = writes
    return out


def control_channel(spec: str) -> ControlChannel:
    if spec == "memory":
        return MemoryControlChannel()
    return RedisControlChannel(spec, prefix="{bench-hotpath}:")


async def paired_async(args: argparse.Namespace) -> dict[str, Any]:
    """Each run timed without, then with, the control channel and stats tick running."""
    gateway, _, _ = build(args.n)
    gateway.backend.control = control_channel(args.control)
    await measure(gateway, max(50, args.events // 10), 1)  # warm up
    out: dict[str, Any] = {"control": args.control}
    for per_tick in (1, 50):
        without: list[float] = []
        with_control: list[float] = []
        for run in range(args.runs):
            # ABBA order: whatever drifts within a pair (frequency, a neighbour's load)
            # counts against each side equally often.
            for control_on in ((False, True) if run % 2 == 0 else (True, False)):
                if not control_on:
                    without.append(await measure(gateway, args.events, per_tick))
                    continue
                await gateway.control.start(gateway.node, register_commands(GatewayAdmin(gateway)))
                tick = asyncio.get_running_loop().create_task(gateway._stats_tick())
                await asyncio.sleep(0.05)  # registered, reader subscribed
                try:
                    with_control.append(await measure(gateway, args.events, per_tick))
                finally:
                    tick.cancel()
                    await asyncio.gather(tick, return_exceptions=True)
                    await gateway.control.close()
        out[f"{per_tick}_per_tick"] = {
            "ns_without": statistics.median(without) * 1e9, "ns_with": statistics.median(with_control) * 1e9,
            # deliveries per CPU-second with / without = time per delivery without / with
            "ratio": statistics.median(without) / statistics.median(with_control),
            "median_pair_ratio": statistics.median(a / b for a, b in zip(without, with_control, strict=True)),
            "pair_ratios": [round(a / b, 3) for a, b in zip(without, with_control, strict=True)]}
    return out


class _NoMemo:
    """Stands in for `BatchMemo()` in the flusher: every connection builds its own arrays."""

    def __new__(cls) -> None:  # type: ignore[misc]
        return None


async def batch_paired_async(args: argparse.Namespace) -> dict[str, Any]:
    """Each run timed with every connection plain, then batched (ABBA order)."""
    gateway, transports, conns = build(args.n)
    if args.no_memo:
        connection_module.BatchMemo = _NoMemo  # type: ignore[misc,assignment]
    await measure(gateway, max(50, args.events // 10), 1)  # warm up
    out: dict[str, Any] = {"memo": not args.no_memo}
    for per_tick in (1, 5, 50):
        timed: dict[bool, list[float]] = {False: [], True: []}
        writes: dict[bool, int] = {False: 0, True: 0}
        for run in range(args.runs):
            for batch_on in ((False, True) if run % 2 == 0 else (True, False)):
                for conn in conns:
                    conn.core.batch = batch_on
                before = sum(t.writes for t in transports)
                timed[batch_on].append(await measure(gateway, args.events, per_tick))
                writes[batch_on] += sum(t.writes for t in transports) - before
        plain, batched = timed[False], timed[True]
        out[f"{per_tick}_per_tick"] = {
            "ns_plain": statistics.median(plain) * 1e9, "ns_batch": statistics.median(batched) * 1e9,
            "ratio": statistics.median(plain) / statistics.median(batched),  # deliveries per CPU-s, batch / plain
            "pair_ratios": [round(a / b, 3) for a, b in zip(plain, batched, strict=True)],
            "writes_plain": writes[False], "writes_batch": writes[True]}
    return out


async def trail_paired_async(args: argparse.Namespace) -> dict[str, Any]:
    """Each run timed plain, then as on a partitioned log (the worker keeps the
    order its hub received events in, `SendTrail`, for exact resume), ABBA."""
    gateway, _, _ = build(args.n)
    await measure(gateway, max(50, args.events // 10), 1)  # warm up
    hub = gateway.hub
    plain_handler = hub.on_broker_event

    def use_trail(on: bool) -> None:
        if on:  # what Gateway.start wires on a partitioned log: record, then fan out
            trail = SendTrail(16)

            def trail_and_fan_out(record: BrokerEvent) -> None:
                trail.record(record)
                plain_handler(record)

            hub.on_broker_event = trail_and_fan_out  # type: ignore[method-assign]
        else:
            hub.on_broker_event = plain_handler  # type: ignore[method-assign]

    out: dict[str, Any] = {}
    for per_tick in (1, 50):
        timed: dict[bool, list[float]] = {False: [], True: []}
        for run in range(args.runs):
            for on in ((False, True) if run % 2 == 0 else (True, False)):
                use_trail(on)
                timed[on].append(await measure(gateway, args.events, per_tick))
        plain, trail = timed[False], timed[True]
        out[f"{per_tick}_per_tick"] = {
            "ns_plain": statistics.median(plain) * 1e9, "ns_trail": statistics.median(trail) * 1e9,
            "ratio": statistics.median(plain) / statistics.median(trail),  # deliveries per CPU-s, trail / plain
            "pair_ratios": [round(a / b, 3) for a, b in zip(plain, trail, strict=True)]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="connections")
    parser.add_argument("--events", type=int, default=1000, help="events per run")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--label", default="")
    parser.add_argument("--control", default=None, metavar="memory|redis://...",
                        help="paired runs without/with this control channel running (prints the ratio)")
    parser.add_argument("--batch", action="store_true",
                        help="paired runs without/with batched frames at 1, 5 and 50 events per tick")
    parser.add_argument("--no-memo", action="store_true", help="with --batch: no per-flush array memo")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--trail", action="store_true",
                        help="paired runs plain / keeping the send order as on redis-cluster:// (SendTrail)")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.trail:
        trailed = run_on_loop(trail_paired_async(args), args.loop)
        for key in ("1_per_tick", "50_per_tick"):
            r = trailed[key]
            print(f"{args.label:<12} {key:<12} plain {r['ns_plain']:6.0f} ns, trail {r['ns_trail']:6.0f} ns "
                  f"per delivery: deliveries per CPU-s trail/plain {r['ratio']:.3f} (pairs "
                  f"{min(r['pair_ratios']):.2f}-{max(r['pair_ratios']):.2f}), N={args.n}")
        return 0
    if args.batch:
        batched = run_on_loop(batch_paired_async(args), args.loop)
        for key in ("1_per_tick", "5_per_tick", "50_per_tick"):
            r = batched[key]
            print(f"{args.label:<12} {key:<12} plain {r['ns_plain']:6.0f} ns, batch {r['ns_batch']:6.0f} ns "
                  f"per delivery: deliveries per CPU-s batch/plain {r['ratio']:.2f} (pairs "
                  f"{min(r['pair_ratios']):.2f}-{max(r['pair_ratios']):.2f}); writes {r['writes_plain']} vs "
                  f"{r['writes_batch']}, memo={batched['memo']}, loop={args.loop}, N={args.n}")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"n": args.n, "events": args.events, "runs": args.runs,
                                           "loop": args.loop, "python": sys.version.split()[0], **batched},
                                          indent=1) + "\n")
        return 0
    if args.control:
        paired = asyncio.run(paired_async(args))
        for key in ("1_per_tick", "50_per_tick"):
            r = paired[key]
            print(f"{args.label:<12} {key:<12} without {r['ns_without']:6.0f} ns, with control "
                  f"{r['ns_with']:6.0f} ns per delivery: deliveries per CPU-s ratio {r['ratio']:.3f} "
                  f"(median pair {r['median_pair_ratio']:.3f}, pairs {min(r['pair_ratios']):.2f}-"
                  f"{max(r['pair_ratios']):.2f}), N={args.n}")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"n": args.n, "events": args.events, "runs": args.runs,
                                           "python": sys.version.split()[0], **paired}, indent=1) + "\n")
        return 0
    result = run_on_loop(main_async(args), args.loop)
    for key in ("1_per_tick", "50_per_tick"):
        r = result[key]
        print(f"{args.label:<12} {key:<12} {r['ns_per_delivery']:8.0f} ns/delivery "
              f"({r['min']:.0f}-{r['max']:.0f}), N={args.n}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"n": args.n, "events": args.events, "runs": args.runs,
                                       "python": sys.version.split()[0], **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
