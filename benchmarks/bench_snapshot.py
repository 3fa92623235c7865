"""What the last-value store (snapshot on subscribe) costs the publish path: store on vs off.

Memory broker, Python only: a real `Gateway` whose N connections (transports
that only count bytes, as in bench_hotpath.py) subscribe to `agent_status`;
`Gateway.publish` is timed (log append, last value, fan-out, flush) for
events of 1,000 agents in turn, with `snapshot_max_keys` at its default and
at 0 (off). Reported: deliveries per CPU-second and the ratio on/off, for
fan-outs 1 to 1,000 (the store's cost is per publish, so the smaller the
fan-out the larger its share).

Redis broker (`--redis`, needs `redis-server`): a private server on a free
port; `RedisEventLog.publish` in batches of 1 and 100, store on and off:
events per second, and CPU per event of this process and of Redis (INFO cpu).

    .venv/bin/python benchmarks/bench_snapshot.py [--events 20000] [--runs 5] [--redis]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autosdlc_ws.broker.memory import memory_backend
from autosdlc_ws.broker.redis_backend import redis_backend
from autosdlc_ws.broker.redis_log import RedisEventLog
from autosdlc_ws.config import Settings
from autosdlc_ws.core.connection_core import ConnectionCore
from autosdlc_ws.core.subscriptions import Subscription
from autosdlc_ws.server.connection import Connection
from autosdlc_ws.server.gateway import Gateway

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hotpath import CountingTransport, NullWS

RESULTS = Path(__file__).resolve().parent / "results" / "snapshot-latest.json"
AGENTS = 1000


def event(seq: int, retag: bool = False) -> dict[str, Any]:
    """Status `seq` of agent `seq % 1000`; with `retag`, naming a new task each time
    (the store's worst case: the resource index of the key changes on every event)."""
    data: dict[str, Any] = {"agentId": f"agent-{seq % AGENTS}", "status": "busy",
                            "currentTask": {"id": f"task-{seq % 7}", "progress": 40}}
    if retag:
        data["taskId"] = f"task-{seq}"
    return {"id": f"evt-{seq}", "type": "agent_status", "timestamp": 1_700_000_000_000, "data": data,
            "metadata": {"version": "1.0", "source": "bench"}}


async def build(n: int, store: bool) -> Gateway:
    settings = Settings(jwt_secret="x" * 32, snapshot_max_keys=100_000 if store else 0)
    gateway = Gateway(settings, backend=memory_backend(snapshot_max_keys=settings.snapshot_max_keys))
    await gateway.backend.start(gateway.hub.on_broker_event)
    for i in range(n):
        core = ConnectionCore(settings=settings, authenticator=gateway.authenticator,
                              connection_id=f"conn-{i}", session_id=f"sess-{i}", opened_at_ms=0)
        conn = Connection(gateway, NullWS(), CountingTransport(), core, "127.0.0.1")  # type: ignore[arg-type]
        gateway.hub.index.add(Subscription(f"sub-{i}", conn, ("agent_status",), frozenset({"agent_status"}), {}))
    return gateway


async def publish_cpu(gateway: Gateway, events: list[dict[str, Any]], per_tick: int = 10) -> float:
    """CPU seconds to publish `events` (and flush the deliveries), `per_tick` per loop iteration."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for i in range(0, len(events), per_tick):
            for one in events[i:i + per_tick]:
                await gateway.publish([one])
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        return time.process_time() - start
    finally:
        gc.enable()


async def memory_results(events: int, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fanout in (1, 10, 100, 1000):
        count = max(2000, events // max(1, fanout // 10))
        gateways = {"on": await build(fanout, True), "off": await build(fanout, False)}
        samples: dict[str, list[float]] = {"on": [], "off": []}
        seq = 0
        for run in range(runs + 1):
            for label in ("on", "off") if run % 2 else ("off", "on"):
                batch = [event(seq + i) for i in range(count)]
                seq += count
                cpu = await publish_cpu(gateways[label], batch)
                if run:  # the first round warms up
                    samples[label].append(count * fanout / cpu)
        # the best run of each: on a shared machine the least disturbed one
        on, off = max(samples["on"]), max(samples["off"])
        out[f"fanout_{fanout}"] = {"deliveries_per_cpu_s_on": on, "deliveries_per_cpu_s_off": off,
                                   "cost_pct": (1 - on / off) * 100, "events": count, "runs": runs,
                                   "median_cost_pct": (1 - statistics.median(samples["on"])
                                                       / statistics.median(samples["off"])) * 100}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_cpu(port: int) -> float:
    info = subprocess.run(["redis-cli", "-p", str(port), "INFO", "cpu"], capture_output=True, text=True,
                          check=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


async def redis_publish(url: str, port: int, prefix: str, store: bool, events: int, batch: int,
                        retag: bool) -> dict[str, float]:
    backend = redis_backend(url, prefix=prefix, max_events=events * 2, snapshot_max_keys=100_000 if store else 0)
    await backend.start(lambda _: None)
    log = backend.log
    assert isinstance(log, RedisEventLog)
    try:
        todo = [event(i, retag) for i in range(events)]
        await log.publish(todo[:100])  # warm up (script load, connections)
        cpu0, redis0, wall0 = time.process_time(), redis_cpu(port), time.perf_counter()
        for i in range(100, events, batch):
            await log.publish(todo[i:i + batch])
        wall, cpu, rcpu = time.perf_counter() - wall0, time.process_time() - cpu0, redis_cpu(port) - redis0
        done = events - 100
        return {"events_per_s": done / wall, "gateway_us_per_event": cpu / done * 1e6,
                "redis_us_per_event": rcpu / done * 1e6}
    finally:
        await backend.close()


async def redis_results(events: int, runs: int) -> dict[str, Any]:
    server = shutil.which("redis-server")
    if server is None:
        return {"skipped": "redis-server not found"}
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-snapshot-")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"redis://127.0.0.1:{port}/0"
        out: dict[str, Any] = {}
        for batch, retag in ((1, False), (100, False), (100, True)):
            n = events // 4 if batch == 1 else events
            samples: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
            for run in range(runs):
                for label in ("on", "off") if run % 2 else ("off", "on"):
                    prefix = f"{{b{run}{label}{batch}{retag}}}:"
                    samples[label].append(await redis_publish(url, port, prefix, label == "on", n, batch, retag))
            row: dict[str, float] = {}
            for label in ("on", "off"):  # the best run of each, as above
                for key in samples[label][0]:
                    pick = max if key == "events_per_s" else min
                    row[f"{key}_{label}"] = pick(s[key] for s in samples[label])
            row["events_per_s_cost_pct"] = (1 - row["events_per_s_on"] / row["events_per_s_off"]) * 100
            out[f"batch_{batch}" + ("_retag" if retag else "")] = row
        return out
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redis", action="store_true", help="also measure the Redis broker")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"memory": asyncio.run(memory_results(args.events, args.runs))}
    for key, row in result["memory"].items():
        print(f"memory {key:<13} on {row['deliveries_per_cpu_s_on']:>12,.0f}  off "
              f"{row['deliveries_per_cpu_s_off']:>12,.0f} deliveries/CPU-s  cost {row['cost_pct']:5.1f} %")
    if args.redis:
        result["redis"] = asyncio.run(redis_results(args.events, args.runs))
        for key, row in result["redis"].items():
            if isinstance(row, dict):
                print(f"redis  {key:<13} " + "  ".join(f"{k} {v:,.1f}" for k, v in row.items()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"python": sys.version.split()[0], **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
