"""Redis Cluster broker figures: publish cost by masters and partitions, and the gateway's cost per delivery.

Part 1, publish (`backend.log.publish`, the backend started with its live
readers on, as a gateway's): one plain Redis (`redis://`) against local
clusters (`tests/redis/cluster.py`'s `LocalCluster`) of `--masters` masters,
each with `--partitions` partitions. Two loads: single events (one per call,
`--publishers` concurrent callers) and batches of 50 events of 1,000 agents
(so a batch touches many partitions). Reported: events/s, Redis CPU per event
(the sum over every redis-server process and thread, from /proc), this process's CPU per
event. With `--subscribers S`, S more started backends (simulated gateway
workers, in this process) receive everything: the extra Redis CPU per message
sent to one of them, and their CPU per event received, feed the estimate.
Redis runs on core 0, this process on core 1.

Part 2, fan-out (`autosdlc-ws bench`'s sessions: gateway on core 0, load
generator on core 1, Redis unpinned): N connections, one event per tick and
50 per tick, `serve --broker redis://...` and `serve --broker redis-cluster://...`
(`--fanout-masters` masters; `--fanout-partitions` partitions, 16 and 1) in turn in one
invocation; deliveries per server CPU-second and the ratio cluster/single.

Every Redis is its own, on free ports, stopped at the end whatever happens.

    .venv/bin/python benchmarks/bench_cluster.py [--events 3000] [--masters 1,2,3] [--partitions 1,4,16]
        [--subscribers 4] [-n 1000] [--repeat 3] [--duration 3] [--fanout-partitions 16,1]
        [--skip-publish] [--skip-fanout]

Figures in docs/architecture.md ("Redis Cluster: measured").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.redis.cluster: the clusters the tests use
sys.path.insert(0, str(ROOT / "benchmarks"))

from private_redis import private_redis_server  # noqa: E402

from autosdlc_ws.bench.cluster_plan import Costs, Load, Plan, Split, plan  # noqa: E402
from autosdlc_ws.bench.loadgen import Phase  # noqa: E402
from autosdlc_ws.bench.runner import run_session  # noqa: E402
from autosdlc_ws.broker.backend import Backend  # noqa: E402
from autosdlc_ws.broker.base import BrokerEvent  # noqa: E402
from autosdlc_ws.broker.partitioned_log import PartitionedEventLog  # noqa: E402
from autosdlc_ws.broker.redis_backend import redis_backend  # noqa: E402
from autosdlc_ws.broker.redis_cluster_backend import redis_cluster_backend  # noqa: E402
from tests.redis.cluster import LocalCluster  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cluster-latest.json"
AGENTS = 1000
BATCH = 50
REDIS_CPU, CLIENT_CPU = 0, 1


def event(seq: int) -> dict[str, Any]:
    """Status `seq` of agent `seq % 1000` (~300 bytes): agents spread over every partition."""
    return {"id": f"evt-{seq}", "type": "agent_status", "timestamp": 1_700_000_000_000,
            "data": {"agentId": f"agent-{seq * 7919 % AGENTS}", "status": "busy", "pad": "x" * 160,
                     "currentTask": {"id": f"task-{seq % 7}", "progress": 40}},
            "metadata": {"version": "1.0", "source": "bench"}}


def pin_process(pid: int, cpu: int) -> None:
    """Every thread of `pid` (redis-server's background threads too) on core `cpu`."""
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task), {cpu})


def two_cores() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1


@contextlib.contextmanager
def local_cluster(masters: int, *, pin: bool) -> Iterator[tuple[str, list[int]]]:
    """A cluster of `masters` masters, no replicas: its URL and its servers' pids."""
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        cluster = LocalCluster(Path(tmp), masters=masters)
        try:
            cluster.start()
            pids = [node.proc.pid for node in cluster.nodes if node.proc is not None]
            if pin:
                for pid in pids:
                    pin_process(pid, REDIS_CPU)
            yield cluster.url, pids
        finally:
            cluster.stop()


@contextlib.asynccontextmanager
async def plain_redis(pin: bool) -> AsyncIterator[tuple[str, list[int]]]:
    async with private_redis_server(REDIS_CPU if pin else None) as (url, pid):
        yield url, [pid]


def redis_cpu(pids: list[int]) -> float:
    """CPU seconds of the servers, every thread, in nanoseconds from schedstat (/proc/PID/stat
    counts 10 ms ticks: too coarse for runs of a second)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, ValueError):
                    total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total / 1e9


def messages_of(backend: Backend, calls: list[list[dict[str, Any]]]) -> int:
    """Pub/Sub messages the calls publish: one per partition a call touches (one per call on one Redis)."""
    log = backend.log
    if not isinstance(log, PartitionedEventLog):
        return len(calls)
    return sum(len({log.partition_of(e) for e in call}) for call in calls)


# --- part 1: publish ------------------------------------------------------------------------------


async def publish_case(make: Callable[[str], Backend], pids: list[int], *, mode: str, events: int,
                       publishers: int, subscribers: int, tag: str) -> dict[str, Any]:
    """One measurement on a fresh prefix: `events` events published in `mode` ("single" or "batch")."""
    prefix = f"{{bench{tag}}}:"
    received = [0]

    def count(_: BrokerEvent) -> None:
        received[0] += 1

    backend = make(prefix)
    workers = [make(prefix) for _ in range(subscribers)]
    started: list[Backend] = []
    try:
        for b in (backend, *workers):
            await b.start(count)
            started.append(b)
        await backend.log.publish([event(-i - 1) for i in range(200)])  # warm up: scripts, connections
        await wait_for(received, 200 * (1 + subscribers))
        todo = [event(i) for i in range(events)]
        size = 1 if mode == "single" else BATCH
        calls = [todo[i:i + size] for i in range(0, events, size)]
        lanes = [calls[i::publishers] for i in range(publishers)]
        received[0] = 0
        cpu0, redis0, wall0 = time.process_time(), redis_cpu(pids), time.perf_counter()

        async def lane(mine: list[list[dict[str, Any]]]) -> None:
            for call in mine:
                await backend.log.publish(call)

        await asyncio.gather(*(lane(mine) for mine in lanes))
        wall = time.perf_counter() - wall0
        complete = await wait_for(received, events * (1 + subscribers))
        cpu, rcpu = time.process_time() - cpu0, redis_cpu(pids) - redis0
        return {"mode": mode, "events": events, "publishers": publishers, "subscribers": subscribers,
                "messages": messages_of(backend, calls), "events_per_s": events / wall,
                "redis_us_per_event": rcpu / events * 1e6, "client_us_per_event": cpu / events * 1e6,
                "received": received[0], "complete": complete}
    finally:
        for b in started:
            with contextlib.suppress(Exception):
                await b.close()


async def wait_for(counter: list[int], target: int, limit_s: float = 20.0) -> bool:
    """Until the live readers have received `target` events (so Redis CPU includes sending them)."""
    deadline = time.monotonic() + limit_s
    while counter[0] < target and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return counter[0] >= target


async def publish_results(args: argparse.Namespace) -> list[dict[str, Any]]:
    pin = two_cores()
    if pin:
        os.sched_setaffinity(0, {CLIENT_CPU})
    rows: list[dict[str, Any]] = []
    seq = [0]

    async def cases(config: dict[str, Any], make: Callable[[str], Backend], pids: list[int],
                    loads: list[tuple[str, int]]) -> None:
        for mode, subscribers in loads:
            seq[0] += 1
            n = args.events if mode == "single" else args.events * 4
            row = await publish_case(make, pids, mode=mode, events=n, subscribers=subscribers,
                                     publishers=args.publishers if mode == "single" else 2, tag=str(seq[0]))
            rows.append({**config, **row})
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}),
                  flush=True)

    loads = [("single", 0), ("batch", 0)]
    with_subs = loads + ([("single", args.subscribers), ("batch", args.subscribers)] if args.subscribers else [])
    async with plain_redis(pin) as (url, pids):
        await cases({"broker": "redis", "masters": 1, "partitions": 1},
                    lambda prefix: redis_backend(url, prefix=prefix), pids, with_subs)
    for masters in args.masters:
        with local_cluster(masters, pin=pin) as (url, pids):
            for partitions in args.partitions:
                last = masters == max(args.masters) and partitions == max(args.partitions)
                await cases({"broker": "redis-cluster", "masters": masters, "partitions": partitions},
                            lambda prefix, k=partitions: redis_cluster_backend(url, prefix=prefix, partitions=k),
                            pids, with_subs if last else loads)
    return rows


def sends(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per extra subscriber: Redis CPU per message sent to it, and its CPU per event received."""
    out = []
    for row in rows:
        if not row["subscribers"]:
            continue
        base = next(r for r in rows if r["broker"] == row["broker"] and r["masters"] == row["masters"]
                    and r["partitions"] == row["partitions"] and r["mode"] == row["mode"]
                    and not r["subscribers"])
        k, n = row["subscribers"], row["events"]
        out.append({"broker": row["broker"], "masters": row["masters"], "partitions": row["partitions"],
                    "mode": row["mode"],
                    "messages_per_call": row["messages"] / (n / (1 if row["mode"] == "single" else BATCH)),
                    "redis_us_per_send": (row["redis_us_per_event"] - base["redis_us_per_event"]) * n
                    / (k * row["messages"]),
                    "worker_us_per_event": (row["client_us_per_event"] - base["client_us_per_event"]) / k})
    return out


# --- part 2: fan-out through the gateway ------------------------------------------------------------


async def fanout_results(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """Single Redis and the cluster at each of `--fanout-partitions`, in a rotating order per
    repeat. The sessions block this loop: nothing else runs on it meanwhile."""
    phases = [Phase("burst b=1", batch=1, duration=args.duration),
              Phase("burst b=50", batch=50, duration=args.duration)]
    sessions: list[dict[str, Any]] = []
    with local_cluster(args.fanout_masters, pin=False) as (cluster, _):
        async with plain_redis(pin=False) as (single, _):
            brokers = [("redis", single, 1), *((f"cluster/{k}", cluster, k) for k in args.fanout_partitions)]
            for rep in range(args.repeat):
                turn = rep % len(brokers)
                for name, url, partitions in brokers[turn:] + brokers[:turn]:
                    env = {"AUTOSDLC_WS_REDIS_PREFIX": f"{{fan{rep}}}:",
                           "AUTOSDLC_WS_REDIS_PARTITIONS": str(partitions)}
                    result = run_session("gateway", args.connections, phases, broker=url, server_env=env,
                                         log_dir=log_dir, label=f"{name} [{rep + 1}/{args.repeat}]",
                                         progress=False)
                    result["repeat"], result["broker_name"] = rep, name
                    sessions.append(result)
                    per_cpu = [round(p.get("deliveries_per_server_cpu_s") or 0) for p in result.get("phases", [])]
                    print(json.dumps({"broker": name, "repeat": rep, "ok": result.get("ok"),
                                      "deliveries_per_server_cpu_s": per_cpu}), flush=True)

    def per_cpu(name: str, rep: int, i: int) -> float | None:
        s = next((s for s in sessions if s["broker_name"] == name and s["repeat"] == rep), None)
        if s is None or not s.get("ok") or len(s.get("phases", [])) <= i:
            return None
        value = s["phases"][i].get("deliveries_per_server_cpu_s")
        return float(value) if value else None

    summary: dict[str, dict[str, Any]] = {}
    for i, phase in enumerate(phases):
        row: dict[str, Any] = {"redis": [v for r in range(args.repeat) if (v := per_cpu("redis", r, i))]}
        for k in args.fanout_partitions:
            pairs = [(per_cpu("redis", r, i), per_cpu(f"cluster/{k}", r, i)) for r in range(args.repeat)]
            ratios = [b / a for a, b in pairs if a and b]
            row[f"cluster/{k}"] = {"values": [b for _, b in pairs if b], "ratios": ratios,
                                   "median_ratio": statistics.median(ratios) if ratios else None}
        summary[phase.label] = row
    return {"n": args.connections, "masters": args.fanout_masters, "partitions": args.fanout_partitions,
            "summary": summary,
            "sessions": [{k: v for k, v in s.items() if k not in ("latency_samples",)} for s in sessions]}


# --- the estimate ---------------------------------------------------------------------------------

#: 1M connections and 100k events/s; each event to 10 or 100 connections (each connection then
#: receives 1 or 10 events/s); each worker subscribed to all, 10 % or 2 % of the partitions
#: (the last two need connections routed to workers by resource); 1 or 10 events of a partition
#: per publish call.
CONNECTIONS, EVENTS_PER_S = 1_000_000, 100_000.0
SCENARIOS = [(fanout, interest, epc) for fanout in (10.0, 100.0) for interest in (1.0, 0.1, 0.02)
             for epc in (1.0, 10.0)]


def costs_from(result: dict[str, Any]) -> Costs | None:
    """The model's costs from this run: the publish script split on the largest cluster with one
    partition (1 and 50 events per call), the subscriber costs from its largest configuration, the
    deliveries per gateway CPU-second over the cluster at one event per tick."""
    rows, fanout = result.get("publish"), result.get("fanout")
    if not rows or not fanout or not fanout["summary"]["burst b=1"].get("cluster/16", {}).get("values"):
        return None
    top = max(r["masters"] for r in rows if r["broker"] == "redis-cluster")

    def row(mode: str, partitions: int, subscribers: int) -> dict[str, Any]:
        return next(r for r in rows if r["broker"] == "redis-cluster" and r["masters"] == top
                    and r["partitions"] == partitions and r["mode"] == mode and r["subscribers"] == subscribers)

    single, batch = row("single", 1, 0), row("batch", 1, 0)
    per_sub = {s["mode"]: s for s in result["sends"] if s["broker"] == "redis-cluster"}
    if "single" not in per_sub or "batch" not in per_sub:
        return None
    epm = BATCH / per_sub["batch"]["messages_per_call"]  # events per message in the batch rows
    send_single, send_batch = per_sub["single"]["redis_us_per_send"], per_sub["batch"]["redis_us_per_send"]
    return Costs(
        deliveries_per_core_s=statistics.median(fanout["summary"]["burst b=1"]["cluster/16"]["values"]),
        worker_receive=Split.from_runs(per_sub["single"]["worker_us_per_event"],
                                       per_sub["batch"]["worker_us_per_event"], epm),
        redis_publish=Split.from_runs(single["redis_us_per_event"], batch["redis_us_per_event"], BATCH),
        redis_send=Split.from_runs(send_single, send_batch / epm, epm))


def estimates(costs: Costs) -> list[dict[str, Any]]:
    out = []
    for fanout, interest, epc in SCENARIOS:
        load = Load(CONNECTIONS, EVENTS_PER_S, fanout, interest=interest, events_per_call=epc)
        try:
            found: Plan | str = plan(load, costs)
        except ValueError as exc:
            found = str(exc)
        out.append({"fanout": fanout, "interest": interest, "events_per_call": epc,
                    "plan": found if isinstance(found, str) else {k: getattr(found, k) for k in Plan.__slots__}})
    return out


# --- output ---------------------------------------------------------------------------------------


def publish_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| broker | masters | partitions | load | events/s | Redis CPU µs/event | client CPU µs/event "
             "| messages/call |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["subscribers"]:
            continue
        calls = r["events"] / (1 if r["mode"] == "single" else BATCH)
        load = "1 event/call" if r["mode"] == "single" else f"{BATCH} events/call"
        lines.append(f"| {r['broker']} | {r['masters']} | {r['partitions']} | {load} | {r['events_per_s']:,.0f} "
                     f"| {r['redis_us_per_event']:.1f} | {r['client_us_per_event']:.0f} "
                     f"| {r['messages'] / calls:.1f} |")
    return "\n".join(lines)


def fanout_table(fanout: dict[str, Any]) -> str:
    def k(values: list[float]) -> str:
        return ", ".join(f"{v / 1000:,.0f}k" for v in values)

    parts = fanout["partitions"]
    head = " | ".join(f"cluster, {p} partition{'s' * (p > 1)}: per CPU-s; / single" for p in parts)
    lines = [f"| load (N={fanout['n']:,}, cluster of {fanout['masters']} masters) | single Redis, per server CPU-s "
             f"| {head} |", "|---" * (2 + len(parts)) + "|"]
    for name, row in fanout["summary"].items():
        cells = []
        for p in parts:
            c = row[f"cluster/{p}"]
            median = f"{c['median_ratio']:.2f}x" if c["median_ratio"] else "-"
            cells.append(f"{k(c['values'])}; {median} ({', '.join(f'{r:.2f}x' for r in c['ratios'])})")
        lines.append(f"| {name} | {k(row['redis'])} | {' | '.join(cells)} |")
    return "\n".join(lines)


def vars_of(split: Split) -> dict[str, float]:
    return {"per_call": split.per_call, "per_event": split.per_event}


def main(argv: list[str] | None = None) -> int:
    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v]

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=3000, help="single events per case (batches: 4x)")
    p.add_argument("--publishers", type=int, default=8, help="concurrent single-event publishers")
    p.add_argument("--masters", type=ints, default=[1, 2, 3])
    p.add_argument("--partitions", type=ints, default=[1, 4, 16])
    p.add_argument("--subscribers", type=int, default=4,
                   help="extra started backends for the per-subscriber costs (largest cluster and plain Redis)")
    p.add_argument("-n", "--connections", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3, help="fan-out sessions per broker, alternating")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per fan-out phase")
    p.add_argument("--fanout-masters", type=int, default=3)
    p.add_argument("--fanout-partitions", type=ints, default=[16, 1],
                   help="the cluster's partitions in the fan-out sessions (1: no send trail, the control)")
    p.add_argument("--skip-publish", action="store_true")
    p.add_argument("--skip-fanout", action="store_true")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    started = time.monotonic()
    result: dict[str, Any] = {"python": sys.version.split()[0], "cpus": len(os.sched_getaffinity(0))}
    if not args.skip_publish:
        rows = asyncio.run(publish_results(args))
        result["publish"], result["sends"] = rows, sends(rows)
        print("\n" + publish_table(rows))
        for s in result["sends"]:
            print(f"{s['broker']} {s['masters']}x{s['partitions']} {s['mode']}: {s['messages_per_call']:.1f} "
                  f"messages per call; Redis {s['redis_us_per_send']:.2f} µs per message per subscriber; a subscriber "
                  f"{s['worker_us_per_event']:.1f} µs per event received")
    if not args.skip_fanout:
        result["fanout"] = asyncio.run(fanout_results(args, args.output.parent / "logs"))
        print("\n" + fanout_table(result["fanout"]))
    costs = costs_from(result)
    if costs is not None:
        result["costs"] = {"deliveries_per_core_s": costs.deliveries_per_core_s,
                           **{name: vars_of(getattr(costs, name))
                              for name in ("worker_receive", "redis_publish", "redis_send")}}
        result["estimates"] = estimates(costs)
        print(f"\ncosts: {json.dumps(result['costs'])}")
        for e in result["estimates"]:
            print(json.dumps(e))
    result["duration_s"] = round(time.monotonic() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nresults: {args.output} ({result['duration_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
